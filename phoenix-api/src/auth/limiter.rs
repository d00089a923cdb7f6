//! The login rate limit: a token bucket per user name and one per client address (IPv6
//! clients by their /64 network, which one host usually holds whole).
//!
//! Every attempt takes one token from both buckets before the password is checked, and a
//! successful login gives them back. So only failed attempts count in the end, while a
//! burst of parallel guesses cannot get past the limit before the first ones fail: the
//! brute-force guarantee (at most `burst` wrong passwords, then one per interval, per name
//! and per client) holds.
//!
//! Each map holds at most [`MAX_BUCKETS`] buckets. Full buckets are pruned when a map
//! doubles in size since the last pruning (amortised O(1) per attempt); when a map is still
//! full of buckets in use, a name or client it does not hold is refused with 429 until
//! buckets refill, rather than letting a flood of new names reset the counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LoginRateLimit;
use crate::{Error, Result};

/// The most buckets each map (user names, clients) holds.
pub const MAX_BUCKETS: usize = 100_000;
/// A map is first pruned at this size, then whenever it doubles since the last pruning.
const FIRST_PRUNE: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Attempts left, fractional while refilling.
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    users: HashMap<String, Bucket>,
    clients: HashMap<IpAddr, Bucket>,
    /// The sizes at which each map is pruned next.
    prune_users_at: usize,
    prune_clients_at: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            users: HashMap::new(),
            clients: HashMap::new(),
            prune_users_at: FIRST_PRUNE,
            prune_clients_at: FIRST_PRUNE,
        }
    }
}

/// The key of a client address: IPv4 addresses (also IPv4-mapped IPv6 ones) whole, IPv6
/// addresses by their /64 network.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(network.into())
            }
        },
    }
}

/// Whether `bucket` has refilled to its burst by `now`.
fn refilled(bucket: &Bucket, burst: u32, interval: Duration, now: Instant) -> bool {
    let needed = (f64::from(burst) - bucket.tokens).max(0.0);
    now.saturating_duration_since(bucket.updated).as_secs_f64() >= needed * interval.as_secs_f64()
}

/// Drops `map`'s full buckets when it reached `prune_at`, and sets the next size to prune
/// at: twice what is left (at least [`FIRST_PRUNE`]).
fn prune<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Bucket>,
    prune_at: &mut usize,
    burst: u32,
    interval: Duration,
    now: Instant,
) {
    if map.len() < *prune_at {
        return;
    }
    map.retain(|_, b| !refilled(b, burst, interval, now));
    *prune_at = map.len().saturating_mul(2).clamp(FIRST_PRUNE, MAX_BUCKETS);
}

/// Counts login attempts; refuses with [`Error::RateLimited`] when a user name or a client
/// address has used its burst, until the bucket refills by one attempt.
#[derive(Debug)]
pub struct LoginLimiter {
    limit: LoginRateLimit,
    buckets: Mutex<Buckets>,
}

/// Refills `bucket` to `now` and takes one attempt; how long to wait when none is left.
fn take(bucket: &mut Bucket, burst: u32, interval: Duration, now: Instant) -> Option<Duration> {
    let burst = f64::from(burst);
    let per_sec = 1.0 / interval.as_secs_f64().max(f64::MIN_POSITIVE);
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
    bucket.updated = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        None
    } else {
        Some(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
    }
}

fn full(burst: u32, now: Instant) -> Bucket {
    Bucket {
        tokens: f64::from(burst),
        updated: now,
    }
}

impl LoginLimiter {
    /// A limiter with these limits.
    pub fn new(limit: LoginRateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Records an attempt to log in as `user` from `client`; refuses it when either has no
    /// attempt left. A refused attempt does not use up the other bucket.
    pub fn check(&self, user: &str, client: Option<IpAddr>) -> Result<()> {
        self.check_at(user, client, Instant::now())
    }

    fn check_at(&self, user: &str, client: Option<IpAddr>, now: Instant) -> Result<()> {
        let limit = self.limit;
        let client = client.map(client_key);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Buckets {
            users,
            clients,
            prune_users_at,
            prune_clients_at,
        } = &mut *buckets;
        prune(
            users,
            prune_users_at,
            limit.per_user_burst,
            limit.per_user_interval,
            now,
        );
        prune(
            clients,
            prune_clients_at,
            limit.per_client_burst,
            limit.per_client_interval,
            now,
        );
        let users_full = users.len() >= MAX_BUCKETS && !users.contains_key(user);
        let clients_full =
            client.is_some_and(|ip| clients.len() >= MAX_BUCKETS && !clients.contains_key(&ip));
        if users_full || clients_full {
            return Err(Error::RateLimited {
                retry_after: limit.per_user_interval.max(limit.per_client_interval),
            });
        }
        let mut user_bucket = users
            .get(user)
            .copied()
            .unwrap_or_else(|| full(limit.per_user_burst, now));
        let mut client_bucket = client.map(|ip| {
            clients
                .get(&ip)
                .copied()
                .unwrap_or_else(|| full(limit.per_client_burst, now))
        });
        let user_wait = take(
            &mut user_bucket,
            limit.per_user_burst,
            limit.per_user_interval,
            now,
        );
        let client_wait = client_bucket
            .as_mut()
            .and_then(|b| take(b, limit.per_client_burst, limit.per_client_interval, now));
        match (user_wait, client_wait) {
            (None, None) => {
                users.insert(user.to_owned(), user_bucket);
                if let (Some(ip), Some(bucket)) = (client, client_bucket) {
                    clients.insert(ip, bucket);
                }
                Ok(())
            }
            (a, b) => Err(Error::RateLimited {
                retry_after: a.unwrap_or_default().max(b.unwrap_or_default()),
            }),
        }
    }

    /// Gives back the attempt [`LoginLimiter::check`] took for a login that succeeded.
    pub fn succeeded(&self, user: &str, client: Option<IpAddr>) {
        let limit = self.limit;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.users.get_mut(user) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(limit.per_user_burst));
        }
        if let Some(ip) = client.map(client_key)
            && let Some(bucket) = buckets.clients.get_mut(&ip)
        {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(limit.per_client_burst));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginRateLimit {
            per_user_burst: 2,
            per_user_interval: Duration::from_secs(10),
            per_client_burst: 3,
            per_client_interval: Duration::from_secs(5),
        })
    }

    #[test]
    fn user_names_are_limited_and_refill() {
        let limiter = limiter();
        let t0 = Instant::now();
        assert!(limiter.check_at("alice", None, t0).is_ok());
        assert!(limiter.check_at("alice", None, t0).is_ok());
        let err = limiter.check_at("alice", None, t0).unwrap_err();
        let wait = err.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            limiter.check_at("bob", None, t0).is_ok(),
            "other names are not affected"
        );
        assert!(
            limiter
                .check_at("alice", None, t0 + Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn successes_give_their_attempt_back() {
        let limiter = limiter();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check_at("alice", None, t0).is_ok());
            limiter.succeeded("alice", None);
        }
        assert!(limiter.check_at("alice", None, t0).is_ok());
        assert!(limiter.check_at("alice", None, t0).is_ok());
        assert!(
            limiter.check_at("alice", None, t0).is_err(),
            "failures still count"
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_network() {
        let limiter = limiter();
        let t0 = Instant::now();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let ip: IpAddr = format!("2001:db8:1:2::{}", i + 1).parse().unwrap();
            assert!(limiter.check_at(name, Some(ip), t0).is_ok());
        }
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limiter.check_at("d", Some(same_net), t0).is_err());
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check_at("d", Some(other_net), t0).is_ok());
    }

    #[test]
    fn maps_are_capped_and_pruned() {
        let limiter = limiter();
        let t0 = Instant::now();
        // Pruned at 1024 (nothing refilled yet), next at 2048.
        for i in 0..2048 {
            assert!(limiter.check_at(&format!("u{i}"), None, t0).is_ok());
        }
        // Long after, the next attempt prunes the refilled buckets.
        let later = t0 + Duration::from_secs(3600);
        assert!(limiter.check_at("fresh", None, later).is_ok());
        let size = limiter.buckets.lock().unwrap().users.len();
        assert_eq!(size, 1, "only the fresh bucket is left");
        // A map full of buckets in use refuses names it does not hold.
        {
            let mut buckets = limiter.buckets.lock().unwrap();
            for i in 0..MAX_BUCKETS {
                buckets.users.insert(
                    format!("busy{i}"),
                    Bucket {
                        tokens: 0.0,
                        updated: later,
                    },
                );
            }
            buckets.prune_users_at = usize::MAX;
        }
        assert!(limiter.check_at("newcomer", None, later).is_err());
        assert!(
            limiter.check_at("fresh", None, later).is_ok(),
            "known names go on"
        );
    }

    #[test]
    fn client_addresses_are_limited_across_names() {
        let limiter = limiter();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for name in ["a", "b", "c"] {
            assert!(limiter.check_at(name, Some(ip), t0).is_ok());
        }
        let err = limiter.check_at("d", Some(ip), t0).unwrap_err();
        assert!(err.retry_after().unwrap() > Duration::from_secs(4));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limiter.check_at("d", Some(other), t0).is_ok());
    }
}
