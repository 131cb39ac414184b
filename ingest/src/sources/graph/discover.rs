//! GDAP customer discovery (`discover = "gdap"`): which customer tenants the partner may read.
//!
//! In: the partner tenant's handle (the source's app id and credential, a token for
//! `partner_tenant_id`) and the shared client. Out: every `discover_interval_minutes`, a
//! [`Found`] on a channel: the customers with at least one `active` granular delegated admin
//! (GDAP) relationship, with their names, or why the listing failed (the tenant set in use then
//! stays as it is).
//!
//! Two collections are read, each paged by `@odata.nextLink` (Microsoft Graph v1.0,
//! `tenantRelationships`, permission `DelegatedAdminRelationship.Read.All`):
//! `delegatedAdminRelationships` (each relationship's `status`, `customer.tenantId`,
//! `accessDetails.unifiedRoles[].roleDefinitionId`, `duration`, `autoExtendDuration`,
//! `endDateTime`) and `delegatedAdminCustomers` (the customers' display names). A customer is
//! polled while one of its relationships is `active`; a relationship that ends (`expired`,
//! `terminated`, ...) drops the customer at the next discovery unless another one is active.
//! Include and exclude lists and the cap are applied by the tenant manager (`mod.rs`), which also
//! passes the relationships of the tenants it polls on to detection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::budget::backoff;
use super::client::{Fetched, TenantHandle};
use super::lanes::Lane;
use super::shared::Shared;

/// The relationships collection, under the Graph host.
pub const RELATIONSHIPS_PATH: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
/// The customers collection, under the Graph host.
pub const CUSTOMERS_PATH: &str = "/v1.0/tenantRelationships/delegatedAdminCustomers";

/// One GDAP relationship, as far as discovery and detection read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub id: String,
    pub display_name: String,
    /// The customer's tenant id, lower case.
    pub customer_tenant_id: String,
    pub customer_name: String,
    /// `active`, `expired`, `terminated`, ... as Graph spells it.
    pub status: String,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`.
    pub role_ids: Vec<String>,
}

impl Relationship {
    /// Whether it grants access now.
    pub fn active(&self) -> bool {
        self.status.eq_ignore_ascii_case("active")
    }
}

/// What one discovery found: active customers by tenant id (lower case), with a name, and every
/// relationship read as an item for detection.
#[derive(Debug, Default)]
pub struct Found {
    pub customers: BTreeMap<String, String>,
    /// Relationships read (any status).
    pub relationships: usize,
    /// The relationships as the reader made them (events in their customer's tenant).
    pub items: Vec<crate::reader::Item>,
    pub received_at: Option<tokio::time::Instant>,
}

/// The relationships of one page (`value`); records without a customer tenant id are skipped.
pub fn parse_relationships(page: &Value) -> Vec<Relationship> {
    let Some(values) = page.get("value").and_then(Value::as_array) else {
        return Vec::new();
    };
    let text = |v: &Value, path: &[&str]| -> String {
        let mut cur = v;
        for p in path {
            match cur.get(p) {
                Some(next) => cur = next,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or_default().to_owned()
    };
    values
        .iter()
        .filter_map(|r| {
            let customer = text(r, &["customer", "tenantId"]).to_ascii_lowercase();
            if customer.is_empty() {
                return None;
            }
            let role_ids = r
                .pointer("/accessDetails/unifiedRoles")
                .and_then(Value::as_array)
                .map(|roles| {
                    roles
                        .iter()
                        .filter_map(|x| x.get("roleDefinitionId")?.as_str())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            Some(Relationship {
                id: text(r, &["id"]),
                display_name: text(r, &["displayName"]),
                customer_tenant_id: customer,
                customer_name: text(r, &["customer", "displayName"]),
                status: text(r, &["status"]),
                role_ids,
            })
        })
        .collect()
}

/// The customers of one page: (tenant id lower case, display name).
pub fn parse_customers(page: &Value) -> Vec<(String, String)> {
    let Some(values) = page.get("value").and_then(Value::as_array) else {
        return Vec::new();
    };
    values
        .iter()
        .filter_map(|c| {
            let id = c
                .get("tenantId")
                .or_else(|| c.get("id"))?
                .as_str()?
                .to_ascii_lowercase();
            let name = c
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Some((id, name))
        })
        .collect()
}

/// The active customers among `relationships`, named from `customers` when listed there.
pub fn active_customers(
    relationships: &[Relationship],
    customers: &[(String, String)],
) -> BTreeMap<String, String> {
    let names: BTreeMap<&str, &str> = customers
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for r in relationships.iter().filter(|r| r.active()) {
        let name = names
            .get(r.customer_tenant_id.as_str())
            .copied()
            .filter(|n| !n.is_empty())
            .unwrap_or(&r.customer_name);
        out.insert(r.customer_tenant_id.clone(), name.to_owned());
    }
    out
}

/// Lists the customers every `discover_interval_minutes` (the first at once) and sends each
/// result, until the receiver goes or the service stops.
pub async fn run(
    shared: Arc<Shared>,
    partner: TenantHandle,
    tx: mpsc::Sender<Result<Found, String>>,
) {
    let interval = shared.scale.of(Duration::from_secs(
        shared.cfg.discover_interval_minutes * 60,
    ));
    loop {
        let result = discover(&shared, &partner).await;
        let Some(result) = result else { return };
        if tx.send(result).await.is_err() {
            return;
        }
        if !shared.sleep(interval).await {
            return;
        }
    }
}

/// One discovery; `None` when the service stops. The relationships are also read as events of
/// their customers' tenants, which the tenant manager passes on for the tenants it polls.
pub(super) async fn discover(
    shared: &Shared,
    partner: &TenantHandle,
) -> Option<Result<Found, String>> {
    let base = shared.cfg.graph_url.trim_end_matches('/');
    let received_at = tokio::time::Instant::now();
    let pages = match all_pages(shared, partner, format!("{base}{RELATIONSHIPS_PATH}")).await? {
        Ok(pages) => pages,
        Err(e) => return Some(Err(format!("listing GDAP relationships: {e}"))),
    };
    let relationships: Vec<Relationship> = pages.iter().flat_map(parse_relationships).collect();
    let mut items = Vec::new();
    for page in &pages {
        let body = serde_json::to_vec(page).unwrap_or_default();
        let name = format!("graph:{}/gdap_relationships", partner.id);
        crate::reader::read_bytes(&name, &body, Some(&partner.id), &shared.read, &mut |i| {
            if !matches!(i, crate::reader::Item::EmptyFile { .. }) {
                items.push(i);
            }
        });
    }

    let customers = match all_pages(shared, partner, format!("{base}{CUSTOMERS_PATH}")).await? {
        Ok(pages) => pages.iter().flat_map(parse_customers).collect::<Vec<_>>(),
        Err(e) => return Some(Err(format!("listing GDAP customers: {e}"))),
    };
    Some(Ok(Found {
        customers: active_customers(&relationships, &customers),
        relationships: relationships.len(),
        items,
        received_at: Some(received_at),
    }))
}

/// Every page of a collection, following `@odata.nextLink`; throttling and transient failures
/// are retried a bounded number of times. `None` when the service stops.
async fn all_pages(
    shared: &Shared,
    partner: &TenantHandle,
    mut url: String,
) -> Option<Result<Vec<Value>, String>> {
    let mut pages = Vec::new();
    let mut attempts = 0u32;
    loop {
        let mut stop = shared.shutdown.clone();
        let fetched = tokio::select! {
            // Directory-class budget: the partner tenant has no roles lane of its own to share it with.
            f = shared.client.get(partner, Lane::DirectoryRoles, &url) => f,
            _ = stop.wait_for(|s| *s) => return None,
        };
        let retry = match fetched {
            Fetched::Page { body, next_link } => {
                attempts = 0;
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => pages.push(v),
                    Err(e) => return Some(Err(format!("a page is not JSON: {e}"))),
                }
                match next_link {
                    Some(next) => url = next,
                    None => return Some(Ok(pages)),
                }
                continue;
            }
            Fetched::Throttled { .. } => "throttled (429)".to_owned(),
            Fetched::Shrink { status } => format!("HTTP {status}"),
            Fetched::Failed {
                retryable: true,
                reason,
            } => reason,
            Fetched::Unavailable(d) => {
                return Some(Err(format!(
                    "HTTP 403 {}: {} (the app needs DelegatedAdminRelationship.Read.All \
                     consented in the partner tenant)",
                    d.code, d.message
                )));
            }
            Fetched::NotFound { code, message } => {
                return Some(Err(format!("HTTP 404 {code}: {message}")));
            }
            Fetched::Unauthorized { reason, .. } => return Some(Err(reason)),
            Fetched::Failed {
                retryable: false,
                reason,
            } => return Some(Err(reason)),
        };
        attempts += 1;
        if attempts > 5 {
            return Some(Err(format!("{retry} (5 times in a row)")));
        }
        let pause = backoff(
            attempts,
            shared.scale.of(Duration::from_secs(1)),
            shared.scale.of(Duration::from_secs(60)),
        );
        if !shared.sleep(pause).await {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A page shaped as Microsoft Learn's "List delegatedAdminRelationships" answer (Graph v1.0;
    /// the published page itself is read in `normalize/kinds.rs`'s tests), one relationship
    /// active and one expired, with a next link.
    fn relationships_page() -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/tenantRelationships/delegatedAdminRelationships?$skiptoken=X",
            "value": [
                {
                    "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
                    "id": "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836",
                    "displayName": "Contoso admin relationship",
                    "duration": "P730D",
                    "customer": {
                        "tenantId": "4D3BAC44-0230-4732-9e70-cc00736f0a97",
                        "displayName": "Contoso Ltd"
                    },
                    "accessDetails": {
                        "unifiedRoles": [
                            { "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10" },
                            { "roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8" }
                        ]
                    },
                    "status": "active",
                    "autoExtendDuration": "P180D",
                    "createdDateTime": "2022-02-10T11:24:42.3148266Z",
                    "activatedDateTime": "2022-02-10T11:26:44.9941884Z",
                    "lastModifiedDateTime": "2022-02-10T11:26:44.9941884Z",
                    "endDateTime": "2024-02-10T11:26:44.9941884Z"
                },
                {
                    "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
                    "id": "0ab4d4b7-9a4c-4f3d-a5d5-0d9e3e6f4b11",
                    "displayName": "Fabrikam old",
                    "duration": "P30D",
                    "customer": {
                        "tenantId": "0b0c1a3e-53f6-4d3c-9b5b-3f6a5c0b7e21",
                        "displayName": "Fabrikam"
                    },
                    "accessDetails": { "unifiedRoles": [] },
                    "status": "expired",
                    "autoExtendDuration": "PT0S",
                    "endDateTime": "2023-01-01T00:00:00Z"
                }
            ]
        })
    }

    #[test]
    fn a_documented_relationship_page_is_read() {
        let rels = parse_relationships(&relationships_page());
        assert_eq!(rels.len(), 2);
        assert_eq!(
            rels[0].customer_tenant_id,
            "4d3bac44-0230-4732-9e70-cc00736f0a97"
        );
        assert_eq!(rels[0].customer_name, "Contoso Ltd");
        assert_eq!(
            rels[0].role_ids,
            [
                "62e90394-69f5-4237-9190-012177145e10",
                "729827e3-9c14-49f7-bb1b-9608f156bbb8"
            ]
        );
        assert!(rels[0].active());
        assert!(!rels[1].active());
    }

    #[test]
    fn only_customers_with_an_active_relationship_are_polled_named_from_the_customer_list() {
        let rels = parse_relationships(&relationships_page());
        let customers = parse_customers(&json!({
            "value": [
                { "id": "4d3bac44-0230-4732-9e70-cc00736f0a97",
                  "tenantId": "4d3bac44-0230-4732-9e70-cc00736f0a97",
                  "displayName": "Contoso (customer list)" },
                { "id": "0b0c1a3e-53f6-4d3c-9b5b-3f6a5c0b7e21",
                  "tenantId": "0b0c1a3e-53f6-4d3c-9b5b-3f6a5c0b7e21",
                  "displayName": "Fabrikam" }
            ]
        }));
        let active = active_customers(&rels, &customers);
        assert_eq!(
            active.into_iter().collect::<Vec<_>>(),
            [(
                "4d3bac44-0230-4732-9e70-cc00736f0a97".to_owned(),
                "Contoso (customer list)".to_owned()
            )]
        );
    }

    #[test]
    fn a_second_relationship_keeps_a_customer_whose_first_one_ended() {
        let mut rels = parse_relationships(&relationships_page());
        rels[1].customer_tenant_id = rels[0].customer_tenant_id.clone();
        rels[0].status = "terminated".into();
        assert!(active_customers(&rels, &[]).is_empty());
        rels[1].status = "active".into();
        assert_eq!(
            active_customers(&rels, &[]).get("4d3bac44-0230-4732-9e70-cc00736f0a97"),
            Some(&"Fabrikam".to_owned())
        );
    }
}
