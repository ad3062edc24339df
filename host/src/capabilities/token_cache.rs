//! `idp-http` client-credentials tokens, cached for the command and shared by its runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::grants::ClientCredentials;

/// Client-credentials tokens for the command, one per token endpoint and client, shared by every
/// run: services running at the same time wait for one token request instead of each making one.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<(String, String), TokenSlot>>,
}

/// One client's token; the async lock makes concurrent runs wait for a single token request.
pub(super) type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;

pub(super) struct Token {
    pub(super) value: String,
    pub(super) expires: Option<Instant>,
}

impl TokenCache {
    pub(super) fn slot(&self, cc: &ClientCredentials) -> TokenSlot {
        self.slots
            .lock()
            .expect("token cache")
            .entry((cc.token_url.clone(), cc.client_id.clone()))
            .or_default()
            .clone()
    }
}
