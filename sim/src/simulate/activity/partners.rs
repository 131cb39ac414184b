//! Partner technicians' customer visits and guests' visits: people who sign in to a tenant
//! that is not their home.

use super::{Gen, usual_auth, weekday};
use crate::simulate::catalog::{self, CITIES, Method, apps};
use crate::simulate::records::Auth;
use crate::simulate::rng::{DAY, HOUR, MIN, Rng, Ticks};
use crate::simulate::world::AcctId;

impl Gen<'_> {
    /// A technician's customer visits on working days: round robin over the usual customers (all
    /// of them in the first working days), at most three a day at least 25 minutes apart, the
    /// occasional customer every twelve days; FIDO2 or a home-tenant MFA claim, on the managed
    /// laptop, from their own home IP. Once, four customers within 50 minutes (under 5 in an hour).
    pub(super) fn technician_visits(&mut self, a: AcctId) {
        let w = self.w;
        let acc = &w.accounts[a];
        let mut rng = w.stream("technician", acc.id.0);
        let tz = CITIES[acc.city].tz;
        let mut next = 0usize;
        let mut workdays = 0;
        let mut burst_done = acc.attack || acc.usual.len() < 4;
        let occasional_days: Vec<i64> = [1, 13, 25]
            .iter()
            .copied()
            .filter(|d| *d < i64::from(w.days))
            .collect();
        for day in 0..i64::from(w.days) {
            let mid = w.local_midnight(day, tz);
            let wd = weekday(w, day);
            let mut visits: Vec<usize> = Vec::new();
            let mut working = false;
            if wd < 5 && !acc.usual.is_empty() && (workdays < 3 || rng.chance(0.9)) {
                workdays += 1;
                working = true;
                let k = if workdays <= 3 {
                    3
                } else {
                    rng.range(1, 4) as usize
                };
                for _ in 0..k.min(acc.usual.len()) {
                    visits.push(acc.usual[next % acc.usual.len()]);
                    next += 1;
                }
            }
            if let Some(occ) = acc.occasional
                && occasional_days.contains(&day)
            {
                visits.push(occ);
                if day > 1 {
                    self.note("partner-new-tenant", occ, acc.id.to_string(), mid, mid + DAY, "technician returns to an occasional customer after 12 days (within 30 days)".into());
                }
            }
            let mut at = mid + rng.range(9 * HOUR, 11 * HOUR);
            if !burst_done && working && workdays == 5 {
                burst_done = true;
                let four: Vec<usize> = acc.usual.iter().copied().take(4).collect();
                for (i, &c) in four.iter().enumerate() {
                    self.visit(&mut rng, a, c, at + [0, 14, 31, 50][i] * MIN, true);
                }
                self.note(
                    "partner-tenant-fanout",
                    w.partner,
                    acc.id.to_string(),
                    at,
                    at + 50 * MIN,
                    "technician reaches 4 customers within 50 minutes (threshold 5 in an hour)"
                        .into(),
                );
                continue;
            }
            for c in visits {
                self.visit(&mut rng, a, c, at, false);
                at += rng.range(25 * MIN, 2 * HOUR);
            }
        }
    }

    fn visit(&mut self, rng: &mut Rng, a: AcctId, customer: usize, at: Ticks, short: bool) {
        let w = self.w;
        let acc = &w.accounts[a];
        let auth = if rng.chance(0.3) {
            Auth::ClaimMfa
        } else {
            usual_auth(rng, acc.method)
        };
        self.interactive(
            at,
            customer,
            a,
            *rng.pick(catalog::ADMIN_APPS),
            acc.home_net,
            Some(acc.laptop),
            auth,
            rng,
        );
        let mut t = at;
        for _ in 0..rng.range(1, if short { 2 } else { 4 }) {
            t += rng.range(3 * MIN, if short { 10 * MIN } else { 40 * MIN });
            self.refresh(
                t,
                customer,
                a,
                *rng.pick(catalog::ADMIN_TOOL_APPS),
                acc.home_net,
                Some(acc.laptop),
                rng,
            );
        }
        if rng.chance(0.5) {
            let at = t + rng.range(MIN, 5 * MIN);
            self.action_in(rng, at, customer, a, acc.home_net);
        }
    }

    /// A guest from another organisation, twice or three times a week, from their own country.
    pub(super) fn guest(&mut self, a: AcctId) {
        let w = self.w;
        let acc = &w.accounts[a];
        let mut rng = w.stream("guest", acc.id.0);
        let tz = CITIES[acc.city].tz;
        for day in 0..i64::from(w.days) {
            if weekday(w, day) >= 5 || !rng.chance(0.45) {
                continue;
            }
            let at = w.local_midnight(day, tz) + rng.range(9 * HOUR, 17 * HOUR);
            if at >= w.end {
                continue;
            }
            let app = *rng.pick(&[apps::SHAREPOINT, apps::TEAMS_WEB]);
            let auth = if rng.chance(0.5) {
                Auth::ClaimMfa
            } else {
                Auth::Mfa(Method::MobileApp)
            };
            self.interactive(
                at,
                acc.tenant,
                a,
                app,
                acc.home_net,
                Some(acc.laptop),
                auth,
                &mut rng,
            );
            for _ in 0..rng.range(0, 3) {
                let t = at + rng.range(10 * MIN, 3 * HOUR);
                if t < w.end {
                    self.refresh(
                        t,
                        acc.tenant,
                        a,
                        apps::TEAMS_DESKTOP,
                        acc.home_net,
                        Some(acc.laptop),
                        &mut rng,
                    );
                }
            }
        }
    }
}
