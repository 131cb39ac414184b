//! The small dated lists inside the state's records, and what keeps them bounded: pushing with a
//! cap that drops the oldest, touching a (tenant, last time) entry, pruning at eviction, and
//! counting distinct keys without storing them.

/// Cap on the tenants a technician or an address keeps, so a hostile input cannot grow one key
/// without bound.
pub(super) const MAX_TENANTS: usize = 64;

pub(super) fn touch_tenant(list: &mut Vec<(u32, i64)>, tenant: u32, now: i64) {
    match list.iter_mut().find(|(t, _)| *t == tenant) {
        Some(entry) => entry.1 = entry.1.max(now),
        None => push_capped(list, (tenant, now), MAX_TENANTS, |(_, at)| *at),
    }
}

/// Eviction of one entry last seen at `last_seen`, with a list of dated items: drops the items
/// older than `horizon`, and says whether the entry is kept. For a kept entry, lowers `floor` to
/// its oldest time.
pub(super) fn kept_since<T>(
    horizon: i64,
    last_seen: i64,
    items: &mut Vec<(T, i64)>,
    floor: &mut i64,
) -> bool {
    items.retain(|(_, at)| *at >= horizon);
    let keep = last_seen >= horizon;
    if keep {
        *floor = items
            .iter()
            .fold((*floor).min(last_seen), |f, (_, at)| f.min(*at));
    }
    keep
}

/// How many distinct keys there are among `extra` and the items that `keep` accepts, counted
/// without storing them: an item counts when neither `extra` nor an earlier kept item has its key.
/// Asked on every password failure; the scan stops at the first earlier match, so repeats of a
/// few keys cost little and all-distinct keys cost what a list of seen keys would.
pub(crate) fn distinct<T, K: PartialEq>(
    items: &[T],
    keep: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> K,
    extra: Option<K>,
) -> usize {
    let mut count = usize::from(extra.is_some());
    for (j, item) in items.iter().enumerate() {
        if !keep(item) {
            continue;
        }
        let k = key(item);
        let seen = extra.as_ref() == Some(&k)
            || items[..j]
                .iter()
                .any(|earlier| keep(earlier) && key(earlier) == k);
        if !seen {
            count += 1;
        }
    }
    count
}

/// Keeps a time `now` in `times` (in event order): drops the times outside the `window_secs`
/// ending at `now`, then pushes `now`, capped at 64 or `min` when larger (the oldest makes room).
/// Whether the window now holds at least `min`: a burst (`brute-force`, `mfa-fatigue`).
pub(crate) fn push_in_window(times: &mut Vec<i64>, now: i64, window_secs: i64, min: u32) -> bool {
    times.retain(|at| *at > now - window_secs);
    push_capped(times, now, 64.max(min as usize), |at| *at);
    times.len() as u32 >= min
}

/// How many of `times` are at or after `since`.
pub(crate) fn count_since(times: &[i64], since: i64) -> usize {
    times.iter().filter(|t| **t >= since).count()
}

/// Pushes, dropping the oldest entry (by `time_of`) when the list is full.
pub(crate) fn push_capped<T>(list: &mut Vec<T>, item: T, cap: usize, time_of: impl Fn(&T) -> i64) {
    if list.len() >= cap
        && let Some((oldest, _)) = list.iter().enumerate().min_by_key(|(_, x)| time_of(x))
    {
        list.swap_remove(oldest);
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `distinct` counts what a set of the kept keys (and the extra one) holds.
    #[test]
    fn distinct_counts_what_a_set_holds() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        for round in 0..500 {
            let len = next(40) as usize;
            let spread = 1 + next(12);
            let items: Vec<(i64, u64)> =
                (0..len).map(|_| (next(10) as i64, next(spread))).collect();
            let extra = (round % 3 != 0).then(|| next(spread));
            let keep = |x: &(i64, u64)| x.0 >= 4;
            let want: std::collections::HashSet<u64> = items
                .iter()
                .filter(|x| keep(x))
                .map(|x| x.1)
                .chain(extra)
                .collect();
            assert_eq!(
                distinct(&items, keep, |x| x.1, extra),
                want.len(),
                "{items:?} with {extra:?}"
            );
        }
    }

    #[test]
    fn capped_lists_drop_the_oldest() {
        let mut v = vec![5, 1, 9];
        push_capped(&mut v, 10, 3, |x| *x);
        v.sort();
        assert_eq!(v, vec![5, 9, 10]);
    }
}
