//! The state every handler receives: use-case services and ports, all behind
//! `Arc`s (cheap to clone per request).

use std::sync::Arc;

use iace_app::auth::AuthService;
use iace_app::calls::CallService;
use iace_app::customers::CustomerService;
use iace_db::SqlStore;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Sign-in, tokens, API keys, authentication of requests.
    pub auth: Arc<AuthService>,
    /// Customer use cases.
    pub customers: Arc<CustomerService>,
    /// Call use cases (placing, reading, hanging up, transferring).
    pub calls: Arc<CallService>,
    /// The database, for readiness checks.
    pub store: SqlStore,
}
