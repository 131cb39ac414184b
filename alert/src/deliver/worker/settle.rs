//! What the worker does with an answer: mark the leased rows by the [`Verdict`] (delivered,
//! retry, throttled, refused, broken), open the circuit of a destination that is broken or has been
//! unreachable for `circuit_after_secs`, reroute to the route's fallbacks, dead-letter, and raise
//! the system alerts that say so, each in the same outbox transaction as the move it reports.

use super::*;

impl Worker {
    /// Moves the leased rows on after a send.
    pub(super) async fn settle(
        &mut self,
        sent: InFlight,
        outcome: Outcome,
    ) -> Result<(), OutboxError> {
        let now = self.now();
        let InFlight {
            batch,
            minimal,
            number,
        } = sent;
        let ids: Vec<String> = batch
            .rows
            .iter()
            .map(|r| r.notification.id.clone())
            .collect();
        let status = outcome.status_text();
        let detail = outcome.detail.clone();
        // any answer shows the receiver can be reached; connection failures that have lasted
        // open the circuit as a broken destination does
        if outcome.status.is_some() || outcome.verdict == Verdict::Delivered {
            self.unreachable_since = None;
        }
        let unreachable_too_long = outcome.unreachable && self.unreachable_for(now);
        match outcome.verdict {
            Verdict::Delivered => {
                let (name, group) = (self.dest.name.clone(), batch.group_key.clone());
                self.db
                    .run(move |o| o.mark_delivered(&name, &group, &refs(&ids), now, &status))
                    .await?;
                let latency = self
                    .shared
                    .metrics
                    .latency
                    .with_label_values(&[self.name()]);
                for r in &batch.rows {
                    let secs =
                        (now - r.notification.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                    latency.observe(secs);
                    self.count(r.notification.kind.as_str(), "delivered", 1);
                }
                self.throttle_streak = 0;
                if self
                    .circuit
                    .as_ref()
                    .is_some_and(|c| number > c.opened_after)
                {
                    self.circuit = None;
                    tracing::info!(destination = %self.dest.name, "destination recovered, circuit closed");
                    self.set_paused("circuit_open", false);
                }
            }
            Verdict::Throttled => {
                let backoff = self
                    .shared
                    .backoff
                    .delay(self.throttle_streak, &mut self.jitter)
                    .max(MIN_THROTTLE);
                self.throttle_streak = self.throttle_streak.saturating_add(1);
                let mut until = add(now, backoff);
                if let Some(ra) = outcome.retry_after {
                    until = until.max(ra.until(now));
                }
                // another answer in flight may have paused it for longer already
                if let Some(earlier) = self.throttled_until {
                    until = until.max(earlier);
                }
                tracing::warn!(destination = %self.dest.name, status = %status, until = %until, "destination throttled, pausing it");
                self.throttled_until = Some(until);
                self.set_paused("throttled", true);
                let retry = Retry {
                    next_attempt_at: until,
                    count_attempt: false,
                    minimal,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::Transient if unreachable_too_long => {
                let since = self.unreachable_since.unwrap_or(now);
                tracing::error!(destination = %self.dest.name, detail = %detail, since = %since, "destination unreachable, opening its circuit");
                let why = Opening::Unreachable { since };
                self.open_circuit(&ids, minimal, &status, &detail, why, now)
                    .await?;
            }
            Verdict::Transient => {
                let n = batch.rows.iter().map(|r| r.attempts).max().unwrap_or(0);
                let mut next = add(now, self.shared.backoff.delay(n, &mut self.jitter));
                if let Some(ra) = outcome.retry_after {
                    next = next.max(ra.until(now));
                }
                tracing::warn!(destination = %self.dest.name, status = %status, detail = %detail, retry_at = %next, "send failed, will retry");
                let retry = Retry {
                    next_attempt_at: next,
                    count_attempt: true,
                    minimal,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::PayloadBug if !minimal => {
                tracing::warn!(destination = %self.dest.name, status = %status, detail = %detail, "payload refused, retrying once with the minimal render");
                let retry = Retry {
                    next_attempt_at: now,
                    count_attempt: true,
                    minimal: true,
                    last_status: status,
                    last_error: detail,
                };
                self.db
                    .run(move |o| o.mark_retry(&refs(&ids), &retry))
                    .await?;
            }
            Verdict::PayloadBug => {
                self.refused(&ids, &status, &detail, now).await?;
            }
            Verdict::Broken => {
                tracing::error!(destination = %self.dest.name, status = %status, detail = %detail, "destination broken, opening its circuit");
                self.open_circuit(&ids, minimal, &status, &detail, Opening::Broken, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Notes a connection failure at `now`; true when the failures have lasted `circuit_after`.
    fn unreachable_for(&mut self, now: DateTime<Utc>) -> bool {
        let since = *self.unreachable_since.get_or_insert(now);
        (now - since).to_std().unwrap_or_default() >= self.dest.circuit_after
    }

    /// Puts the leased rows back, opens (or keeps open) the circuit until the next probe, reroutes
    /// what has a fallback and, on the first opening, tells the fallbacks.
    async fn open_circuit(
        &mut self,
        ids: &[String],
        minimal: bool,
        status: &str,
        detail: &str,
        why: Opening,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        let retry = Retry {
            next_attempt_at: now,
            count_attempt: true,
            minimal,
            last_status: status.to_owned(),
            last_error: detail.to_owned(),
        };
        let ids = ids.to_vec();
        self.db
            .run(move |o| o.mark_retry(&refs(&ids), &retry))
            .await?;
        let first_opening = self.circuit.is_none();
        self.circuit = Some(Circuit {
            probe_at: add(now, self.dest.probe_interval),
            opened_after: self.started,
        });
        self.set_paused("circuit_open", true);
        let to = self.reroute(now).await?;
        if first_opening {
            self.raise_broken(&to, status, detail, why, now).await?;
        }
        Ok(())
    }

    /// The minimal render was refused too: rows with a fallback go there, the others become dead
    /// letters, and a system alert says so, in the same transaction (see [`refusal_report`]).
    async fn refused(
        &mut self,
        ids: &[String],
        status: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        let (dest, known, ids) = (self.dest.clone(), self.known.clone(), ids.to_vec());
        let (st, de) = (status.to_owned(), detail.to_owned());
        let refused = self
            .db
            .run(move |o| {
                let error = format!("refused even in minimal form: {de}");
                let refusal = Refusal {
                    last_status: &st,
                    last_error: &error,
                };
                o.divert_refused(&dest.name, &refs(&ids), now, &known, &refusal, |r| {
                    refusal_report(&dest, &st, &de, r, now)
                })
            })
            .await?;
        if refused.rerouted.is_empty() && refused.dead.is_empty() {
            return Ok(());
        }
        self.shared
            .metrics
            .render_errors
            .with_label_values(&[self.name()])
            .inc();
        for r in &refused.rerouted {
            self.count(r.kind.as_str(), "rerouted", 1);
        }
        self.count_dead(&refused.dead);
        let to = refused.fallbacks();
        tracing::error!(destination = %self.dest.name, status = %status, detail = %detail, rerouted = refused.rerouted.len(), to = ?to, dead = refused.dead.len(), "payload refused even in minimal form");
        self.poke(&to);
        self.poke(&refusal_recipients(&self.dest.name, &refused));
        Ok(())
    }

    /// Reroutes pending rows with a fallback; returns the destinations that received rows.
    pub(super) async fn reroute(&mut self, now: DateTime<Utc>) -> Result<Vec<String>, OutboxError> {
        let (name, known) = (self.dest.name.clone(), self.known.clone());
        let moved = self.db.run(move |o| o.reroute(&name, now, &known)).await?;
        let mut to = BTreeSet::new();
        for r in &moved {
            self.count(r.kind.as_str(), "rerouted", 1);
            to.extend(r.to.iter().cloned());
        }
        if !moved.is_empty() {
            tracing::warn!(destination = %self.dest.name, rows = moved.len(), to = ?to, "rows rerouted to fallback");
        }
        let to: Vec<String> = to.into_iter().collect();
        self.poke(&to);
        Ok(to)
    }

    async fn raise_broken(
        &mut self,
        to: &[String],
        status: &str,
        detail: &str,
        why: Opening,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if to.is_empty() {
            tracing::error!(destination = %self.dest.name, "destination broken and no fallback to tell");
            return Ok(());
        }
        let event = match why {
            Opening::Unreachable { since } => {
                system::destination_unreachable(&self.dest, detail, since, to, now)
            }
            Opening::Broken => system::destination_broken(&self.dest, status, detail, to, now),
        };
        self.raise(&event, to, now).await
    }

    pub(super) async fn dead_letters(
        &mut self,
        rows: &[ExpiredRow],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.count_dead(rows);
        let to = self.fallbacks(rows);
        tracing::error!(destination = %self.dest.name, rows = rows.len(), reason = why, "notifications dead-lettered");
        let event = system::dead_letters(&self.dest.name, rows, why);
        self.raise(&event, &to, now).await
    }

    pub(super) fn count_dead(&self, rows: &[ExpiredRow]) {
        self.shared
            .metrics
            .dead_letters
            .with_label_values(&[self.name()])
            .inc_by(rows.len() as u64);
        for r in rows {
            self.count(r.kind.as_str(), "dead", 1);
        }
    }

    pub(super) fn fallbacks(&self, rows: &[ExpiredRow]) -> Vec<String> {
        rows.iter()
            .flat_map(|r| r.fallback.iter())
            .filter(|f| f.as_str() != self.dest.name && self.known.contains(f.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub(super) async fn raise(
        &mut self,
        event: &SystemEvent,
        to: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        if to.is_empty() {
            return Ok(());
        }
        let rows: Vec<Notification> = system_notifications(event, to, now);
        self.db.run(move |o| o.insert(&rows)).await?;
        self.poke(to);
        Ok(())
    }

    pub(super) fn poke(&self, to: &[String]) {
        for d in to {
            if let Some(n) = self.shared.wakers.get(d) {
                n.notify_one();
            }
        }
    }
}

/// Who hears that `destination` refused payloads: the fallbacks that took rows, or else the
/// destination itself, which still takes other messages. A refused system alert is reported to
/// nobody, so a receiver that refuses everything does not make alerts about alerts.
fn refusal_recipients(destination: &str, refused: &Refused) -> Vec<String> {
    let to = refused.fallbacks();
    if !to.is_empty() {
        return to;
    }
    if refused.rows().all(|(_, _, kind)| kind == Kind::System) {
        return Vec::new();
    }
    vec![destination.to_owned()]
}

/// The system alert about refused rows, one notification per recipient.
fn refusal_report(
    dest: &ResolvedDestination,
    status: &str,
    detail: &str,
    refused: &Refused,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    let tell = refusal_recipients(&dest.name, refused);
    if tell.is_empty() {
        return Vec::new();
    }
    let rows: Vec<(String, String)> = refused
        .rows()
        .map(|(id, alert, _)| (id.to_owned(), alert.to_owned()))
        .collect();
    let event = system::payload_refused(
        dest,
        status,
        detail,
        &rows,
        &refused.fallbacks(),
        refused.dead.len(),
    );
    system_notifications(&event, &tell, now)
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}
