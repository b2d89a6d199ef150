//! One module per port; each implements it for [`crate::SqlStore`].

mod agents;
mod api_keys;
mod calls;
mod customers;
mod experiments;
mod inbox;
mod memories;
mod orgs;
mod patterns;
mod personas;
mod refresh_tokens;
mod transcripts;
mod users;

use iace_domain::ports::{Page, PageRequest};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::entity::HasId;

/// Runs `select` as one keyset page over the UUID v7 `id` column.
pub(crate) async fn page<E, C>(
    db: &C,
    select: Select<E>,
    id: E::Column,
    page: PageRequest,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: HasId,
    C: ConnectionTrait,
{
    let limit = u64::from(page.limit.clamp(1, PageRequest::MAX_LIMIT));
    let mut select = select;
    if let Some(after) = page.after {
        select = if page.descending {
            select.filter(id.lt(after))
        } else {
            select.filter(id.gt(after))
        };
    }
    select = if page.descending {
        select.order_by_desc(id)
    } else {
        select.order_by_asc(id)
    };
    // One extra row tells whether there is a next page.
    let mut items = select.limit(limit + 1).all(db).await?;
    let more = items.len() as u64 > limit;
    items.truncate(limit as usize);
    let next = if more {
        items.last().map(HasId::row_id)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// Converts every row of a page, failing on the first that does not convert.
pub(crate) fn convert_page<M, T, E>(
    page: Page<M>,
    convert: impl Fn(M) -> Result<T, E>,
) -> Result<Page<T>, E> {
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(convert)
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}
