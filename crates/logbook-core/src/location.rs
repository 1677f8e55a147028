//! Where an address is: the place and network owner an IP database gave an event's `ip` when the
//! event arrived (issue 19), free of I/O.
//!
//! The stores ask an `IpLocator` for every event with an `ip` while they prepare it, before the
//! writer sees it, and keep the answer with the event. It is analysis, like `new_ip`: not part of
//! the tamper-evident leaf, and never looked up again (the place is what the database said then).
//! The reader of the database files (MaxMind DB format) lives in the server; here are only the
//! record, the trait and the validated values of the query terms `country:`, `asn:` and `city:`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What an IP database says about one address. Every part is optional: a country database has
/// no city, an ASN database no place, and many ranges have only a country.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2, upper case (`IN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    /// The first subdivision (state, province).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// The radius around the coordinates, in kilometres, within which the address probably is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_radius_km: Option<u32>,
    /// The autonomous system number of the network the address belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The organization the autonomous system is registered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

impl Location {
    /// Nothing known: the stores keep no location for it.
    pub fn is_empty(&self) -> bool {
        *self == Location::default()
    }

    /// The JSON object the stores keep and splice into the event's body as `"location"`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a location always serializes")
    }

    /// "Mumbai, IN" (city and country code, whichever are known), or `None`.
    pub fn place(&self) -> Option<String> {
        match (&self.city, &self.country_code) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (Some(city), None) => Some(city.clone()),
            (None, Some(country)) => Some(country.clone()),
            (None, None) => None,
        }
    }

    /// "AS9829 BSNL" (number and organization, whichever are known), or `None`.
    pub fn network_owner(&self) -> Option<String> {
        match (self.asn, &self.organization) {
            (Some(asn), Some(organization)) => Some(format!("AS{asn} {organization}")),
            (Some(asn), None) => Some(format!("AS{asn}")),
            (None, Some(organization)) => Some(organization.clone()),
            (None, None) => None,
        }
    }

    /// "Mumbai, IN · AS9829 BSNL": what the page and the CLI show beside an address.
    pub fn summary(&self) -> Option<String> {
        match (self.place(), self.network_owner()) {
            (Some(place), Some(owner)) => Some(format!("{place} · {owner}")),
            (Some(only), None) | (None, Some(only)) => Some(only),
            (None, None) => None,
        }
    }

    /// Every known part on one line, for the hover text and the event view: "Mumbai, Maharashtra,
    /// India (IN) · 19.07, 72.88 ±20 km · AS9829 BSNL".
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        let mut place: Vec<String> = [&self.city, &self.region, &self.country_name]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(code) = &self.country_code {
            match place.last_mut() {
                Some(last) if self.country_name.is_some() => *last = format!("{last} ({code})"),
                _ => place.push(code.clone()),
            }
        }
        if !place.is_empty() {
            parts.push(place.join(", "));
        }
        if let (Some(latitude), Some(longitude)) = (self.latitude, self.longitude) {
            let mut coordinates = format!("{latitude:.2}, {longitude:.2}");
            if let Some(radius) = self.accuracy_radius_km {
                coordinates.push_str(&format!(" ±{radius} km"));
            }
            parts.push(coordinates);
        }
        if let Some(owner) = self.network_owner() {
            parts.push(owner);
        }
        parts.join(" · ")
    }
}

/// Answers where an address is. The server's IP databases implement it; the stores call it for
/// every event with an `ip` while they prepare the event, off the writer. It must be cheap (a
/// memory-mapped tree walk) and never fail: an address it cannot place has no location.
pub trait IpLocator: Send + Sync + fmt::Debug {
    fn locate(&self, ip: IpAddr) -> Option<Location>;

    /// What the stores keep of `ip`'s location (`LocationColumns::of_location` of `locate`). A
    /// locator asked about the same addresses over and over may keep its answers instead of
    /// walking and decoding its databases each time; the server's IP databases do, until a
    /// database is replaced (`logbook_server::ip_databases`).
    fn located_columns(&self, ip: IpAddr) -> Option<Arc<LocationColumns>> {
        LocationColumns::of_location(&self.locate(ip)?).map(Arc::new)
    }
}

/// The locator of a store started without IP databases: no event gets a location.
#[derive(Debug, Default)]
pub struct NoIpLocator;

impl IpLocator for NoIpLocator {
    fn locate(&self, _ip: IpAddr) -> Option<Location> {
        None
    }
}

/// Shared handle the stores keep.
pub type SharedIpLocator = Arc<dyn IpLocator>;

/// A located event's values the stores keep: the columns queries filter on and the whole object.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationColumns {
    pub country_code: Option<String>,
    pub asn: Option<i64>,
    pub city: Option<String>,
    /// `Location::to_json`.
    pub json: String,
}

impl LocationColumns {
    /// The columns of the event's location, when the locator knows anything about its address.
    pub fn of(locator: &dyn IpLocator, ip: Option<IpAddr>) -> Option<Arc<Self>> {
        locator.located_columns(ip?)
    }

    /// The columns of a location; `None` when it holds nothing.
    pub fn of_location(location: &Location) -> Option<Self> {
        if location.is_empty() {
            return None;
        }
        Some(Self {
            country_code: location.country_code.clone(),
            asn: location.asn.map(i64::from),
            city: location.city.clone(),
            json: location.to_json(),
        })
    }

    /// The columns of a stored location object (`EventRow::location`), kept as it was written, for
    /// copying an event to another store.
    pub fn of_stored_json(json: &str) -> Result<Option<Self>, serde_json::Error> {
        let location: Location = serde_json::from_str(json)?;
        Ok(Self::of_location(&location).map(|columns| Self {
            json: json.to_owned(),
            ..columns
        }))
    }
}

/// What one batch of the location backfill did (`LocationStore::locate_stored_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocationBackfillBatch {
    /// Events read in this batch.
    pub events_examined: u64,
    /// Events that had an address and no location and got one.
    pub events_located: u64,
    /// Whether the batch reached the account's newest event (the next batch reads only events
    /// stored after it).
    pub done: bool,
}

/// A country code in a query (`country:IN`): two ASCII letters, kept upper case, so `country:in`
/// means the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a country is a two-letter ISO 3166 code (e.g. IN, SG)")]
pub struct InvalidCountryCode;

impl CountryCode {
    pub fn parse(text: &str) -> Result<Self, InvalidCountryCode> {
        if text.len() == 2 && text.bytes().all(|byte| byte.is_ascii_alphabetic()) {
            Ok(Self(text.to_ascii_uppercase()))
        } else {
            Err(InvalidCountryCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an ASN is a number from 0 to 4294967295, with or without AS in front (e.g. 9829, AS9829)")]
pub struct InvalidAsn;

/// An autonomous system number in a query (`asn:9829` or `asn:AS9829`).
pub fn parse_asn(text: &str) -> Result<u32, InvalidAsn> {
    let digits = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(InvalidAsn);
    }
    digits.parse().map_err(|_| InvalidAsn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mumbai() -> Location {
        Location {
            country_code: Some("IN".into()),
            country_name: Some("India".into()),
            region: Some("Maharashtra".into()),
            city: Some("Mumbai".into()),
            latitude: Some(19.0748),
            longitude: Some(72.8856),
            accuracy_radius_km: Some(20),
            asn: Some(9829),
            organization: Some("BSNL".into()),
        }
    }

    #[test]
    fn a_location_reads_as_place_and_network_owner() {
        assert_eq!(
            mumbai().summary().as_deref(),
            Some("Mumbai, IN · AS9829 BSNL")
        );
        assert_eq!(
            mumbai().detail(),
            "Mumbai, Maharashtra, India (IN) · 19.07, 72.89 ±20 km · AS9829 BSNL"
        );
        let country_only = Location {
            country_code: Some("SG".into()),
            ..Location::default()
        };
        assert_eq!(country_only.summary().as_deref(), Some("SG"));
        assert_eq!(country_only.detail(), "SG");
        assert_eq!(Location::default().summary(), None);
    }

    #[test]
    fn a_location_keeps_only_known_parts_in_its_json() {
        let json = Location {
            asn: Some(13335),
            ..Location::default()
        }
        .to_json();
        assert_eq!(json, r#"{"asn":13335}"#);
        let round_trip: Location = serde_json::from_str(&mumbai().to_json()).unwrap();
        assert_eq!(round_trip, mumbai());
    }

    #[test]
    fn country_codes_are_two_letters_kept_upper_case() {
        assert_eq!(CountryCode::parse("in").unwrap().as_str(), "IN");
        for bad in ["", "I", "IND", "1N", "É", "I-"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn asns_are_numbers_with_an_optional_as_prefix() {
        assert_eq!(parse_asn("9829"), Ok(9829));
        assert_eq!(parse_asn("AS9829"), Ok(9829));
        assert_eq!(parse_asn("as13335"), Ok(13335));
        for bad in ["", "AS", "-1", "98x", "4294967296", "AS 1"] {
            assert!(parse_asn(bad).is_err(), "{bad}");
        }
    }
}
