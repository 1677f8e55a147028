//! `SharedStore`: the parts of a `Store` that both SQL backends implement with the same SQL
//! (limits, people, alerting, attention, known networks), written once over a `SqlDatabase`. Each
//! store crate makes one over its own database and hands it out from `Store::people()`,
//! `Store::alerting()` and the like.

use logbook_core::{AccountId, StoreError};

use crate::executor::SqlExecutor;

/// The shared implementations, over the store's `SqlDatabase`.
pub struct SharedStore<Database> {
    pub database: Database,
}

impl<Database> SharedStore<Database> {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// The row of `account`, if it exists.
pub async fn account_row(
    sql: &dyn SqlExecutor,
    context: &'static str,
    account: &AccountId,
) -> Result<Option<i64>, StoreError> {
    sql.query_optional(
        context,
        "SELECT account_row FROM accounts WHERE name = $1",
        &[account.as_str().into()],
    )
    .await?
    .map(|row| row.integer(0))
    .transpose()
}

/// The row of `account`; an unknown account is `AccountNotFound`.
pub async fn existing_account_row(
    sql: &dyn SqlExecutor,
    context: &'static str,
    account: &AccountId,
) -> Result<i64, StoreError> {
    account_row(sql, context, account)
        .await?
        .ok_or_else(|| StoreError::AccountNotFound(account.clone()))
}

/// A stored account name read back; an invalid one (a hand-edited row) is a database error.
pub fn stored_account(context: &'static str, name: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(name).map_err(|_| StoreError::Database {
        context,
        message: format!("stored account name {name:?} is not valid"),
    })
}
