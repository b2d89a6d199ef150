//! Cursor pagination on the wire: `?limit=&cursor=&order=`, answered with
//! `{ items, next_cursor }`. Cursors are opaque strings.

use iace_domain::ports::{Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;

/// Paging parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `asc` (oldest first, default) or `desc` (newest first).
    pub order: Option<Order>,
}

/// Sort order by creation time.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

const CURSOR_PREFIX: &str = "c1.";

fn encode(id: uuid::Uuid) -> String {
    format!("{CURSOR_PREFIX}{}", id.simple())
}

impl PageParams {
    /// The store's page request.
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
        if !(1..=PageRequest::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", "out_of_range", "limit is 1-200"));
        }
        let mut request = match &self.cursor {
            None => PageRequest::first(limit),
            Some(cursor) => {
                let id = cursor
                    .strip_prefix(CURSOR_PREFIX)
                    .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
                    .ok_or_else(|| {
                        ApiError::invalid("cursor", "invalid_cursor", "not a cursor from this API")
                    })?;
                PageRequest::after(limit, id)
            }
        };
        if matches!(self.order, Some(Order::Desc)) {
            request = request.newest_first();
        }
        Ok(request)
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Paged<T> {
    /// Converts a store page.
    pub fn from_page<D>(page: Page<D>, convert: impl Fn(D) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(convert).collect(),
            next_cursor: page.next.map(encode),
        }
    }
}
