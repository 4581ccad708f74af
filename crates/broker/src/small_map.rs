//! A map that is a short vector until it grows, then a hash map.
//!
//! Topic trees in a device fleet are mostly chains: `devices/{id}/messages/events`
//! has one child per level below the device id, and most topics have one subscriber.
//! A `HashMap` with one entry allocates room for four, plus control bytes; a vector
//! holds exactly what is there and a linear scan over a few keys is as fast as hashing.
//! Past [`SPILL`] entries the map turns into a `HashMap`, so wide levels (the device id
//! level itself, a topic with 10,000 subscribers) keep O(1) lookups.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Entries kept in the vector form; one more turns it into a hash map.
const SPILL: usize = 8;

/// See the module documentation.
#[derive(Debug)]
pub(crate) enum SmallMap<K, V> {
    /// Few entries, scanned linearly.
    Few(Vec<(K, V)>),
    /// Many entries, hashed; boxed so the common small form stays three words wide
    /// (trie nodes hold two of these each).
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Eq + Hash, V> SmallMap<K, V> {
    /// The value for `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => v.iter().find(|(k, _)| k.borrow() == key).map(|(_, v)| v),
            SmallMap::Many(m) => m.get(key),
        }
    }

    /// The value for `key`, mutably.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => v
                .iter_mut()
                .find(|(k, _)| (*k).borrow() == key)
                .map(|(_, v)| v),
            SmallMap::Many(m) => m.get_mut(key),
        }
    }

    /// Inserts, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(old) = self.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        self.push_new(key, value);
        None
    }

    /// The value for `key`, inserting `make()` under `K::from(key)` if absent.
    pub(crate) fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> V) -> &mut V
    where
        K: Borrow<Q> + for<'a> From<&'a Q>,
        Q: Eq + Hash + ?Sized,
    {
        if self.get(key).is_none() {
            self.push_new(K::from(key), make());
        }
        self.get_mut(key)
            .unwrap_or_else(|| unreachable!("the entry was inserted just above"))
    }

    /// Adds an entry known to be absent, spilling into a hash map when the vector is full.
    fn push_new(&mut self, key: K, value: V) {
        match self {
            SmallMap::Few(v) if v.len() < SPILL => v.push((key, value)),
            SmallMap::Few(v) => {
                let mut m: HashMap<K, V> = std::mem::take(v).into_iter().collect();
                m.insert(key, value);
                *self = SmallMap::Many(Box::new(m));
            }
            SmallMap::Many(m) => {
                m.insert(key, value);
            }
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => {
                let i = v.iter().position(|(k, _)| k.borrow() == key)?;
                let (_, value) = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new(); // give the allocation back
                }
                Some(value)
            }
            SmallMap::Many(m) => m.remove(key),
        }
    }
}

impl<K, V> SmallMap<K, V> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        match self {
            SmallMap::Few(v) => v.len(),
            SmallMap::Many(m) => m.len(),
        }
    }

    /// True when there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in no particular order; no allocation (this runs on every match).
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Few(v) => Iter::Few(v.iter()),
            SmallMap::Many(m) => Iter::Many(m.iter()),
        }
    }

    /// Takes every value out, leaving the map empty.
    pub(crate) fn drain_values(&mut self) -> Vec<V> {
        match std::mem::take(self) {
            SmallMap::Few(v) => v.into_iter().map(|(_, v)| v).collect(),
            SmallMap::Many(m) => m.into_values().collect(),
        }
    }
}

/// Iterator over a [`SmallMap`]'s entries.
pub(crate) enum Iter<'a, K, V> {
    /// Over the vector form.
    Few(std::slice::Iter<'a, (K, V)>),
    /// Over the hash-map form.
    Many(std::collections::hash_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Many(i) => i.next(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Behaves like a HashMap through inserts and removes across the spill point.
        #[test]
        fn matches_a_hash_map(ops in proptest::collection::vec((any::<bool>(), 0u8..24, any::<u16>()), 0..200)) {
            let mut small: SmallMap<u8, u16> = SmallMap::default();
            let mut reference = HashMap::new();
            for (insert, k, v) in ops {
                if insert {
                    prop_assert_eq!(small.insert(k, v), reference.insert(k, v));
                } else {
                    prop_assert_eq!(small.remove(&k), reference.remove(&k));
                }
                prop_assert_eq!(small.len(), reference.len());
                for (k, v) in &reference {
                    prop_assert_eq!(small.get(k), Some(v));
                }
            }
        }
    }

    #[test]
    fn get_or_insert_with_inserts_once() {
        let mut m: SmallMap<Box<str>, u32> = SmallMap::default();
        for i in 0..20u32 {
            *m.get_or_insert_with(format!("k{}", i % 10).as_str(), || 0) += 1;
        }
        assert_eq!(m.len(), 10);
        assert_eq!(m.get("k3"), Some(&2));
    }
}
