//! Known networks (`/networks`): owners and admins name networks of their account ("office" =
//! 203.0.113.0/24, "vpn"), so events from them show the name instead of looking unfamiliar and
//! `ip:office` works in searches. Every change is an audit event. Also the "Where else this actor
//! has been seen" list of the event detail view, which names known networks the same way.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::AccountId;
use logbook_core::event::{Outcome, Target};
use logbook_core::unfamiliar_ip::{
    KnownNetwork, NetworkName, known_network_of, parse_network_blocks,
};
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::render::{Chrome, WebError, page, utc_text};
use crate::web::session::{SignedIn, check_form};

pub const NETWORK_SAVE: &str = "logbook.network.save";
pub const NETWORK_DELETE: &str = "logbook.network.delete";

/// Addresses listed under "Where else this actor has been seen".
pub const ADDRESSES_SHOWN: u32 = 50;

pub struct NetworkRow {
    pub name: String,
    pub blocks: String,
    pub updated_at: String,
}

/// What the form was sent with and what was wrong with it, to show next to the field.
#[derive(Default)]
pub struct NetworkFormState {
    pub name: String,
    pub blocks: String,
    pub name_error: Option<String>,
    pub blocks_error: Option<String>,
}

#[derive(Template)]
#[template(path = "networks.html")]
pub struct NetworksPage {
    pub chrome: Chrome,
    pub networks: Vec<NetworkRow>,
    pub form: NetworkFormState,
}

async fn networks_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: NetworkFormState,
) -> Result<Response, WebError> {
    let networks = state
        .store()
        .unfamiliar_ips()
        .known_networks(&signed_in.user.account)
        .await?
        .iter()
        .map(|network| NetworkRow {
            name: network.name.to_string(),
            blocks: network.blocks_text(),
            updated_at: utc_text(network.updated_at),
        })
        .collect();
    Ok(page(&NetworksPage {
        chrome: Chrome::new(state, "Known networks", Some(signed_in), "networks"),
        networks,
        form,
    }))
}

/// `GET /networks`.
pub async fn get(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, WebError> {
    networks_page(&state, &signed_in, NetworkFormState::default()).await
}

fn require_manager(signed_in: &SignedIn) -> Result<(), WebError> {
    if signed_in.user.role.manages_account() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only owners and admins manage known networks.",
        ))
    }
}

fn network_target(name: &NetworkName) -> Target {
    Target {
        target_type: "network".into(),
        id: name.to_string(),
        name: None,
    }
}

#[derive(Debug, Deserialize)]
pub struct SaveForm {
    csrf_token: String,
    name: String,
    blocks: String,
}

/// `POST /networks`: creates a network or replaces the blocks of the one with that name.
pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<SaveForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let name = NetworkName::parse(form.name.trim());
    let blocks = parse_network_blocks(&form.blocks);
    let (Ok(name), Ok(blocks)) = (&name, &blocks) else {
        let state_of_form = NetworkFormState {
            name: form.name.clone(),
            blocks: form.blocks.clone(),
            name_error: name.as_ref().err().map(ToString::to_string),
            blocks_error: blocks.as_ref().err().cloned(),
        };
        let mut response = networks_page(&state, &signed_in, state_of_form).await?;
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    let network = KnownNetwork {
        name: name.clone(),
        blocks: blocks.clone(),
        updated_at: state.clock().now(),
    };
    let account = &signed_in.user.account;
    let previous = state
        .store()
        .unfamiliar_ips()
        .save_known_network(account, &network)
        .await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("blocks".into(), network.blocks_text().into());
    if let Some(previous) = &previous {
        metadata.insert("previous_blocks".into(), previous.blocks_text().into());
    }
    audit::record(
        &state,
        AuditEvent {
            account,
            action: NETWORK_SAVE,
            message: match &previous {
                Some(_) => format!(
                    "{} changed known network {} to {}",
                    signed_in.user.email,
                    network.name,
                    network.blocks_text()
                ),
                None => format!(
                    "{} named network {} ({})",
                    signed_in.user.email,
                    network.name,
                    network.blocks_text()
                ),
            },
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![network_target(&network.name)],
            metadata: Some(metadata),
        },
    )
    .await?;
    Ok(Redirect::to("/networks").into_response())
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    csrf_token: String,
}

/// `POST /networks/{name}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let name = NetworkName::parse(&name).map_err(|_| WebError::NotFound)?;
    let account = &signed_in.user.account;
    let Some(deleted) = state
        .store()
        .unfamiliar_ips()
        .delete_known_network(account, &name)
        .await?
    else {
        return Err(WebError::NotFound);
    };
    audit::record(
        &state,
        AuditEvent {
            account,
            action: NETWORK_DELETE,
            message: format!(
                "{} removed known network {} ({})",
                signed_in.user.email,
                deleted.name,
                deleted.blocks_text()
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![network_target(&deleted.name)],
            metadata: None,
        },
    )
    .await?;
    Ok(Redirect::to("/networks").into_response())
}

/// One address of "Where else this actor has been seen".
pub struct SeenAddressRow {
    pub ip: String,
    /// The known network holding the address, or empty.
    pub network_name: String,
    pub first_seen_at: String,
    /// Empty when the address was not used in the actor's newest events.
    pub last_seen_at: String,
    pub recent_event_count: u64,
    pub is_this_event: bool,
}

/// What the event detail view shows about the event's address and its actor's other addresses.
pub struct UnfamiliarIpView {
    /// The known network of the event's address, or empty.
    pub network_name: String,
    pub seen_elsewhere: Vec<SeenAddressRow>,
}

/// The known network of `ip` and where else `actor_id` has been seen, for the detail view.
pub async fn unfamiliar_ip_view(
    state: &AppState,
    account: &AccountId,
    actor_id: Option<&str>,
    ip: Option<std::net::IpAddr>,
) -> Result<UnfamiliarIpView, WebError> {
    let store = state.store().unfamiliar_ips();
    let networks = store.known_networks(account).await?;
    let network_name_of = |address: std::net::IpAddr| {
        known_network_of(&networks, address)
            .map(|network| network.name.to_string())
            .unwrap_or_default()
    };
    let seen_elsewhere = match actor_id {
        Some(actor_id) => store
            .actor_addresses(account, actor_id, ADDRESSES_SHOWN)
            .await?
            .into_iter()
            .map(|address| SeenAddressRow {
                ip: address.ip.to_string(),
                network_name: network_name_of(address.ip),
                first_seen_at: utc_text(address.first_seen_at),
                last_seen_at: address.last_seen_at.map(utc_text).unwrap_or_default(),
                recent_event_count: address.recent_event_count,
                is_this_event: ip.map(|ip| ip.to_canonical()) == Some(address.ip),
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(UnfamiliarIpView {
        network_name: ip.map(network_name_of).unwrap_or_default(),
        seen_elsewhere,
    })
}
