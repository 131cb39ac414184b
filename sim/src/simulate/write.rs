//! Writing the world: per tenant, Event Hub NDJSON envelopes (`eventhub/<tenant>/<stream>-NNN.json`)
//! or Graph beta pages (`graph/<tenant>/signins-NNN.json`, newest first, `@odata.nextLink`), role
//! assignments and eligibilities for every tenant, and the world's config, labels and description.
//!
//! The metadata files (`labels.jsonl`, `benign.jsonl`, `world.json`, `eval.json`) carry
//! `"Type": "EntrawatchSimulation..."` and `"SourceSystem"`, the way Log Analytics rows name their
//! table, so `entrawatch replay OUT` counts them as a category it does not read instead of
//! rejecting them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use super::activity::Note;
use super::attacks::{Attacks, Label};
use super::catalog::ROLES;
use super::records::{Actor, Cat, Rec};
use super::render::{self, iso_secs};
use super::rng::{Guid, Rng, label};
use super::world::{Format, GroupKind, Kind, World};

/// Records per Event Hub capture file, and per Graph page.
const RECORDS_PER_FILE: usize = 2000;
const GRAPH_PAGE: usize = 500;
const SOURCE_SYSTEM: &str = "entrawatch simulate";

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
    /// Records written by kind (`SignInLogs`, `directoryAudits`, ...), repeats included.
    pub records: BTreeMap<String, u64>,
    /// Records delivered twice on purpose (Event Hub is at least once).
    pub redelivered: u64,
}

pub struct Writer<'a> {
    pub root: PathBuf,
    pub w: &'a World,
    pub written: Written,
    rng: Rng,
}

/// A metadata record `entrawatch replay` skips as an unread category.
pub fn tagged(kind: &str, mut fields: Map<String, Value>) -> Value {
    fields.insert("Type".into(), json!(format!("EntrawatchSimulation{kind}")));
    fields.insert("SourceSystem".into(), json!(SOURCE_SYSTEM));
    Value::Object(fields)
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The Event Hub record of a record, and its category.
fn eh_value(w: &World, r: &Rec) -> (&'static str, Value) {
    match r {
        Rec::SignIn(s) => (render::sign_in_category(s), render::eh_sign_in(w, s)),
        Rec::Audit(a) => ("AuditLogs", render::eh_audit(w, a)),
        Rec::RiskyUser(u) => ("RiskyUsers", render::eh_risky_user(w, u)),
        Rec::Detection(d) => ("UserRiskEvents", render::eh_detection(w, d)),
    }
}

/// The Graph entity of a record.
fn graph_value(w: &World, r: &Rec) -> Value {
    match r {
        Rec::SignIn(s) => render::graph_sign_in(w, s),
        Rec::Audit(a) => render::graph_audit(w, a),
        Rec::RiskyUser(u) => render::graph_risky_user(w, u),
        Rec::Detection(d) => render::graph_detection(w, d),
    }
}

impl<'a> Writer<'a> {
    pub fn new(root: &Path, w: &'a World) -> Writer<'a> {
        Writer {
            root: root.to_owned(),
            w,
            written: Written::default(),
            rng: Rng::derive(w.seed, &[label("writer")]),
        }
    }

    fn create(&mut self, rel: &str) -> anyhow::Result<(PathBuf, BufWriter<File>)> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok((path, BufWriter::with_capacity(1 << 16, file)))
    }

    fn finish(&mut self, path: &Path, mut out: BufWriter<File>) -> anyhow::Result<()> {
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.written.files += 1;
        self.written.bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(())
    }

    /// A whole JSON document in one file.
    pub fn json(&mut self, rel: &str, value: &Value, pretty: bool) -> anyhow::Result<()> {
        let (path, mut out) = self.create(rel)?;
        if pretty {
            serde_json::to_writer_pretty(&mut out, value)?;
        } else {
            serde_json::to_writer(&mut out, value)?;
        }
        out.write_all(b"\n")?;
        self.finish(&path, out)
    }

    /// One JSON value per line.
    pub fn lines(&mut self, rel: &str, values: &[Value]) -> anyhow::Result<()> {
        let (path, mut out) = self.create(rel)?;
        for v in values {
            serde_json::to_writer(&mut out, v)?;
            out.write_all(b"\n")?;
        }
        self.finish(&path, out)
    }

    pub fn text(&mut self, rel: &str, text: &str) -> anyhow::Result<()> {
        let (path, mut out) = self.create(rel)?;
        out.write_all(text.as_bytes())?;
        self.finish(&path, out)
    }

    fn count(&mut self, kind: &str, n: u64) {
        *self.written.records.entry(kind.to_owned()).or_default() += n;
    }

    /// Every tenant's logs. `recs` must be in event-time order.
    pub fn tenants(&mut self, recs: &[Rec]) -> anyhow::Result<()> {
        let w = self.w;
        let mut by_tenant: Vec<Vec<&Rec>> = vec![Vec::new(); w.tenants.len()];
        for r in recs {
            by_tenant[r.tenant()].push(r);
        }
        for (t, list) in by_tenant.iter().enumerate() {
            if !w.tenants[t].monitored {
                continue;
            }
            match w.tenants[t].format {
                Format::EventHub => self.event_hub(t, list)?,
                Format::Graph => self.graph(t, list)?,
            }
            self.roles(t)?;
        }
        Ok(())
    }

    fn event_hub(&mut self, t: usize, recs: &[&Rec]) -> anyhow::Result<()> {
        let w = self.w;
        let dir = format!("eventhub/{}", w.tenants[t].id);
        let stream = |r: &Rec| match r {
            Rec::SignIn(s) => match s.cat {
                Cat::Interactive => "signins",
                Cat::NonInteractive => "noninteractive",
                Cat::ServicePrincipal => "serviceprincipal",
            },
            Rec::Audit(_) => "audits",
            Rec::RiskyUser(_) | Rec::Detection(_) => "risk",
        };
        for name in [
            "signins",
            "noninteractive",
            "serviceprincipal",
            "audits",
            "risk",
        ] {
            let mine: Vec<&Rec> = recs.iter().copied().filter(|r| stream(r) == name).collect();
            if mine.is_empty() {
                continue;
            }
            // Azure Monitor batches a category into events of tens of records; a capture file
            // holds about RECORDS_PER_FILE records.
            let mut batches: Vec<(usize, usize)> = Vec::new();
            let mut i = 0;
            while i < mine.len() {
                let n = self.rng.range(20, 80) as usize;
                batches.push((i, (i + n).min(mine.len())));
                i += n;
            }
            let mut files: Vec<(usize, usize)> = Vec::new();
            let mut start = 0;
            while start < batches.len() {
                let mut end = start;
                let mut records = 0;
                while end < batches.len() && records < RECORDS_PER_FILE {
                    records += batches[end].1 - batches[end].0;
                    end += 1;
                }
                files.push((start, end));
                start = end;
            }
            let mut previous: Option<(String, usize)> = None;
            let mut line = String::new();
            for (file_no, &(first, last)) in files.iter().enumerate() {
                let (path, mut out) = self.create(&format!("{dir}/{name}-{file_no:03}.json"))?;
                // At-least-once delivery: each sign-in capture file opens with the previous
                // file's last event again (replay drops the repeats).
                if name == "signins"
                    && let Some((text, n)) = &previous
                {
                    out.write_all(text.as_bytes())?;
                    self.written.redelivered += *n as u64;
                }
                let mut first_line: Option<(String, usize)> = None;
                for &(from, to) in &batches[first..last] {
                    if first_line.is_none() && !line.is_empty() {
                        first_line = Some((line.clone(), 0));
                    }
                    line.clear();
                    line.push_str("{\"records\":[");
                    for (j, r) in mine[from..to].iter().enumerate() {
                        if j > 0 {
                            line.push(',');
                        }
                        let (kind, v) = eh_value(w, r);
                        self.count(kind, 1);
                        line.push_str(&serde_json::to_string(&v)?);
                    }
                    line.push_str("]}\n");
                    out.write_all(line.as_bytes())?;
                }
                let (from, to) = batches[last - 1];
                // ... and the first file of a stream gets its first event again at the end
                // (a consumer restart before the checkpoint).
                if name == "signins"
                    && file_no == 0
                    && let Some((text, _)) = first_line
                {
                    out.write_all(text.as_bytes())?;
                    let (f, t) = batches[first];
                    self.written.redelivered += (t - f) as u64;
                }
                previous = Some((line.clone(), to - from));
                self.finish(&path, out)?;
            }
        }
        Ok(())
    }

    /// Graph list pages of `recs` (already newest first), each with `@odata.nextLink` to the
    /// next but the last.
    fn pages(
        &mut self,
        dir: &str,
        name: &str,
        context: &str,
        next: &str,
        recs: &[&Rec],
    ) -> anyhow::Result<()> {
        let w = self.w;
        let pages = recs.len().div_ceil(GRAPH_PAGE);
        for (i, page) in recs.chunks(GRAPH_PAGE).enumerate() {
            let (path, mut out) = self.create(&format!("{dir}/{name}-{i:03}.json"))?;
            write!(
                out,
                "{{\"@odata.context\":{}",
                serde_json::to_string(context)?
            )?;
            if i + 1 < pages {
                let link = format!("{next}&$top={GRAPH_PAGE}&$skiptoken={}", self.rng.hex(48));
                write!(
                    out,
                    ",\"@odata.nextLink\":{}",
                    serde_json::to_string(&link)?
                )?;
            }
            out.write_all(b",\"value\":[")?;
            for (j, r) in page.iter().enumerate() {
                if j > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &graph_value(w, r))?;
            }
            out.write_all(b"]}\n")?;
            self.finish(&path, out)?;
        }
        self.count(name, recs.len() as u64);
        Ok(())
    }

    fn graph(&mut self, t: usize, recs: &[&Rec]) -> anyhow::Result<()> {
        let w = self.w;
        let dir = format!("graph/{}", w.tenants[t].id);
        let newest_first = |pred: &dyn Fn(&Rec) -> bool| -> Vec<&Rec> {
            recs.iter().rev().copied().filter(|r| pred(r)).collect()
        };
        let base = "https://graph.microsoft.com/beta/auditLogs/signIns?$filter=";
        let sign_ins = "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns";
        for (name, cat, filter) in [
            (
                "signins",
                Cat::Interactive,
                "signInEventTypes/any(t: t eq 'interactiveUser')",
            ),
            (
                "signins-noninteractive",
                Cat::NonInteractive,
                "signInEventTypes/any(t: t eq 'nonInteractiveUser')",
            ),
            (
                "signins-serviceprincipal",
                Cat::ServicePrincipal,
                "signInEventTypes/any(t: t eq 'servicePrincipal')",
            ),
        ] {
            let list = newest_first(&|r| matches!(r, Rec::SignIn(s) if s.cat == cat));
            if !list.is_empty() {
                self.pages(&dir, name, sign_ins, &format!("{base}{filter}"), &list)?;
            }
        }
        let audits = newest_first(&|r| matches!(r, Rec::Audit(_)));
        if !audits.is_empty() {
            self.pages(
                &dir,
                "directoryAudits",
                "https://graph.microsoft.com/beta/$metadata#auditLogs/directoryAudits",
                "https://graph.microsoft.com/beta/auditLogs/directoryAudits?$filter=activityDateTime ge 2026-10-01T00:00:00Z",
                &audits,
            )?;
        }
        // Risky users: the list shows each user's latest state.
        let mut latest: BTreeMap<usize, &Rec> = BTreeMap::new();
        for r in recs {
            if let Rec::RiskyUser(u) = r {
                latest.insert(u.user, r);
            }
        }
        let mut users: Vec<&Rec> = latest.into_values().collect();
        users.sort_by_key(|r| std::cmp::Reverse(r.time()));
        if !users.is_empty() {
            self.pages(
                &dir,
                "riskyUsers",
                "https://graph.microsoft.com/beta/$metadata#identityProtection/riskyUsers",
                "https://graph.microsoft.com/beta/identityProtection/riskyUsers?$filter=riskLastUpdatedDateTime ge 2026-10-01T00:00:00Z",
                &users,
            )?;
        }
        let detections = newest_first(&|r| matches!(r, Rec::Detection(_)));
        if !detections.is_empty() {
            self.pages(
                &dir,
                "riskDetections",
                "https://graph.microsoft.com/beta/$metadata#identityProtection/riskDetections",
                "https://graph.microsoft.com/beta/identityProtection/riskDetections?$filter=lastUpdatedDateTime ge 2026-10-01T00:00:00Z",
                &detections,
            )?;
        }
        Ok(())
    }

    /// The partner's GDAP relationships with each customer that has some, as the Graph source's
    /// discovery reads them (`graph/<customer>/gdapRelationships.json`, one list page).
    pub fn gdap(&mut self, relationships: &[(usize, Value)]) -> anyhow::Result<()> {
        let mut by_tenant: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        for (t, r) in relationships {
            by_tenant.entry(*t).or_default().push(r.clone());
        }
        for (t, list) in by_tenant {
            self.count("delegatedAdminRelationships", list.len() as u64);
            self.json(
                &format!("graph/{}/gdapRelationships.json", self.w.tenants[t].id),
                &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships", "value": list}),
                false,
            )?;
        }
        Ok(())
    }

    /// Directory context for every tenant: active role assignments with the principal expanded,
    /// and PIM eligibilities, as they stood when the world began.
    fn roles(&mut self, t: usize) -> anyhow::Result<()> {
        let w = self.w;
        let tenant = &w.tenants[t];
        let dir = format!("graph/{}", tenant.id);
        let mut active = Vec::new();
        let mut eligible = Vec::new();
        for &a in &tenant.members {
            let acc = &w.accounts[a];
            for g in &acc.roles {
                let role = ROLES[g.role];
                let role_guid =
                    Guid(u128::from_str_radix(&role.template.replace('-', ""), 16).unwrap_or(0));
                let id = format!(
                    "{}-1",
                    base64url(&[role_guid.bytes(), acc.id.bytes()].concat())
                );
                if g.eligible {
                    let created = iso_secs(w.start - 90 * super::rng::DAY);
                    eligible.push(json!({
                        "id": self.rng.guid().to_string(),
                        "principalId": acc.id.to_string(),
                        "roleDefinitionId": role.template,
                        "directoryScopeId": "/",
                        "appScopeId": null,
                        "createdUsing": null,
                        "createdDateTime": created,
                        "modifiedDateTime": created,
                        "status": "Provisioned",
                        "memberType": "Direct",
                        "scheduleInfo": {"startDateTime": created, "recurrence": null, "expiration": {"type": "noExpiration", "endDateTime": null, "duration": null}}
                    }));
                } else {
                    active.push(json!({
                        "id": id,
                        "principalId": acc.id.to_string(),
                        "directoryScopeId": "/",
                        "roleDefinitionId": role.template,
                        "principal": {
                            "@odata.type": "#microsoft.graph.user",
                            "id": acc.id.to_string(),
                            "accountEnabled": true,
                            "displayName": acc.display,
                            "userPrincipalName": acc.upn,
                            "userType": if acc.kind == Kind::Guest { "Guest" } else { "Member" },
                            "mail": acc.upn,
                        }
                    }));
                }
            }
        }
        for g in w.groups.iter().filter(|g| g.tenant == t) {
            if let GroupKind::RoleAssignable(role) = g.kind {
                active.push(json!({
                    "id": format!("{}-1", base64url(&[g.id.bytes(), g.id.bytes()].concat())),
                    "principalId": g.id.to_string(),
                    "directoryScopeId": "/",
                    "roleDefinitionId": ROLES[role].template,
                    "principal": {"@odata.type": "#microsoft.graph.group", "id": g.id.to_string(), "displayName": g.name, "isAssignableToRole": true, "securityEnabled": true, "mailEnabled": false}
                }));
            }
        }
        let c = &tenant.connector;
        active.push(json!({
            "id": format!("{}-1", base64url(&[c.id.bytes(), c.app_id.bytes()].concat())),
            "principalId": c.id.to_string(),
            "directoryScopeId": "/",
            "roleDefinitionId": ROLES[super::catalog::roles::DIRECTORY_READERS].template,
            "principal": {"@odata.type": "#microsoft.graph.servicePrincipal", "id": c.id.to_string(), "appId": c.app_id.to_string(), "displayName": c.name, "servicePrincipalType": "Application", "accountEnabled": true}
        }));
        self.count("roleAssignments", active.len() as u64);
        self.json(
            &format!("{dir}/roleAssignments.json"),
            &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments(principal())", "value": active}),
            false,
        )?;
        if !eligible.is_empty() {
            self.count("roleEligibilitySchedules", eligible.len() as u64);
            self.json(
                &format!("{dir}/roleEligibilitySchedules.json"),
                &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleEligibilitySchedules", "value": eligible}),
                false,
            )?;
        }
        Ok(())
    }
}

/// `labels.jsonl` lines.
pub fn label_lines(w: &World, labels: &[Label]) -> Vec<Value> {
    labels
        .iter()
        .map(|l| {
            let mut m = Map::new();
            m.insert("rule".into(), json!(l.rule));
            m.insert("variant".into(), json!(l.variant));
            m.insert(
                "tenant_id".into(),
                json!(w.tenants[l.tenant].id.to_string()),
            );
            m.insert("principal_kind".into(), json!(l.principal_kind));
            m.insert("principal_id".into(), json!(l.principal_id));
            m.insert("alt_principal_ids".into(), json!(l.alt_principal_ids));
            m.insert(
                "alt_tenant_ids".into(),
                json!(
                    l.alt_tenants
                        .iter()
                        .map(|&t| w.tenants[t].id.to_string())
                        .collect::<Vec<_>>()
                ),
            );
            m.insert("from".into(), json!(iso_secs(l.from)));
            m.insert("to".into(), json!(iso_secs(l.to)));
            m.insert("story".into(), json!(l.story));
            tagged("Label", m)
        })
        .collect()
}

/// `benign.jsonl` lines: the named look-alikes.
pub fn note_lines(w: &World, notes: &[Note]) -> Vec<Value> {
    notes
        .iter()
        .map(|n| {
            let mut m = Map::new();
            m.insert("looks_like".into(), json!(n.rule));
            m.insert(
                "tenant_id".into(),
                json!(w.tenants[n.tenant].id.to_string()),
            );
            m.insert("principal_id".into(), json!(n.principal));
            m.insert("from".into(), json!(iso_secs(n.from)));
            m.insert("to".into(), json!(iso_secs(n.to)));
            m.insert("story".into(), json!(n.text));
            tagged("Benign", m)
        })
        .collect()
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string (same escapes).
    serde_json::to_string(s).unwrap_or_default()
}

/// `entrawatch.toml`: what detection needs to know about this world.
pub fn config_toml(w: &World, command: &str) -> String {
    let mut s = String::new();
    s += "# The detection config of a simulated world, written by\n";
    s += &format!("#   {command}\n");
    s += "# Use it as: entrawatch replay --config OUT/entrawatch.toml OUT\n\n";
    for &t in std::iter::once(&w.partner).chain(w.customers.iter()) {
        s += &format!(
            "[[tenants]]\nid = {}\nname = {}\n\n",
            toml_str(&w.tenants[t].id.to_string()),
            toml_str(&w.tenants[t].name)
        );
    }
    let second = &w.tenants[w.second_partner];
    s += &format!(
        "[[tenants]]\nid = {}\nname = {}\n\n",
        toml_str(&second.id.to_string()),
        toml_str(&second.name)
    );
    s += "[detect]\n";
    s += "# The partners' home tenants (the CSP, and an MSSP serving two customers): their\n";
    s += "# technicians count as privileged in every customer.\n";
    s += &format!(
        "partner_tenants = [{}, {}]\n",
        toml_str(&w.partner_tenant().id.to_string()),
        toml_str(&second.id.to_string())
    );
    let gdap: Vec<String> = w
        .groups
        .iter()
        .filter(|g| g.kind == GroupKind::Gdap)
        .map(|g| toml_str(&g.id.to_string()))
        .collect();
    s += "# GDAP access groups in the partner tenant (AdminAgents, HelpdeskAgents, SalesAgents are always watched).\n";
    s += &format!("partner_access_groups = [{}]\n\n", gdap.join(", "));
    for &t in std::iter::once(&w.partner).chain(w.customers.iter()) {
        for &a in &w.tenants[t].members {
            let acc = &w.accounts[a];
            if acc.kind == Kind::BreakGlass {
                let id = if w.tenants[t].break_glass_by_upn {
                    acc.upn.clone()
                } else {
                    acc.id.to_string()
                };
                s += &format!(
                    "[[detect.break_glass]]\ntenant_id = {}\nid = {}\n\n",
                    toml_str(&w.tenants[t].id.to_string()),
                    toml_str(&id)
                );
            }
        }
    }
    let rotation: Vec<String> = (0..w.tenants.len())
        .filter(|&t| w.tenants[t].monitored)
        .filter_map(|t| match super::activity::rotation_actor(w, t) {
            Actor::App { sp, .. } => Some(toml_str(&sp.to_string())),
            _ => None,
        })
        .collect();
    s += "[detect.applications]\n";
    s += "# The automation that rotates application secrets in each tenant (its service principal).\n";
    s += &format!("rotation_identities = [{}]\n\n", rotation.join(", "));
    s
}

/// The principals that are part of attacks: (kind, id).
pub fn attack_principals(w: &World, attacks: &Attacks) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in w.accounts.iter().filter(|a| a.attack) {
        out.push(("user".into(), a.id.to_string()));
    }
    for ip in &attacks.ips {
        out.push(("ip".into(), ip.clone()));
    }
    for l in &attacks.labels {
        out.push((l.principal_kind.to_owned(), l.principal_id.clone()));
        for alt in &l.alt_principal_ids {
            let kind = if alt.contains('.') || alt.contains(':') {
                "ip"
            } else {
                "user"
            };
            out.push((kind.to_owned(), alt.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_ids_are_base64url() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }
}
