//! The subscription tree: which sessions want a message published to a topic.
//!
//! Routing asks this question for every PUBLISH, so the tree is organised by topic
//! level: a lookup walks only the branches a topic can reach (its literal levels, `+`
//! and `#`) instead of testing every filter. The tree owns all subscriptions of the
//! broker, direct and shared, keyed by a session key `K` with per-subscription
//! options `V`; picking one member of a shared group is left to the caller, which owns
//! the round-robin state.
//!
//! Every walk (subscribe, unsubscribe, match, drop) is iterative: a filter may have
//! tens of thousands of levels and a recursive walk would let one client overflow the
//! router's stack.

use std::collections::HashMap;
use std::hash::Hash;
use std::str::Split;

use mqtt::topic::{parse_shared, TopicError};

use crate::small_map::SmallMap;

/// All subscriptions of the broker, indexed by topic level for fast matching.
pub struct SubscriptionTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

/// One subscription selected by [`SubscriptionTree::for_each_match`].
#[derive(Debug)]
pub enum Match<'a, K, V> {
    /// An ordinary subscription: the message goes to `key`.
    Direct {
        /// The subscribing session.
        key: &'a K,
        /// Its options for this filter.
        value: &'a V,
        /// The filter that matched, as subscribed, e.g. to look up its subscription
        /// identifier or for tracing.
        filter: &'a str,
    },
    /// A shared subscription group: the message goes to one of `members`
    /// [MQTT-4.8.2].
    Shared {
        /// The share name.
        group: &'a str,
        /// The inner filter that matched (without `$share/{group}/`).
        filter: &'a str,
        /// The full `$share/{group}/{filter}` string: a stable identifier of the group,
        /// usable as a map key for the caller's round-robin position.
        id: &'a str,
        /// The group's sessions with their options; never empty.
        members: &'a [(K, V)],
    },
}

impl<K, V> Clone for Match<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Match<'_, K, V> {}

/// One topic level. Literal children live in a map; `+` and `#` get dedicated slots so
/// that matching never hashes a wildcard.
struct Node<K, V> {
    children: SmallMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// Subscriptions whose filter ends at this level.
    here: Option<Box<Subscribers<K, V>>>,
    /// Subscriptions whose filter is this level followed by `/#` (or `#` at the root).
    hash: Option<Box<Subscribers<K, V>>>,
}

/// The subscriptions of one filter.
struct Subscribers<K, V> {
    filter: Box<str>,
    direct: SmallMap<K, V>,
    /// Shared groups on this filter, by share name (usually none, so a small map).
    shared: SmallMap<Box<str>, SharedGroup<K, V>>,
}

/// The members of one `$share/{group}/{filter}`. Members sit in a `Vec` so the caller
/// can index them for round-robin; `index` keeps subscribe and unsubscribe O(1) in
/// large groups.
struct SharedGroup<K, V> {
    id: Box<str>,
    members: Vec<(K, V)>,
    index: HashMap<K, usize>,
}

/// Where in its last node a filter's subscriptions are stored.
#[derive(Clone, Copy)]
enum Slot {
    Here,
    Hash,
}

/// A filter split into the levels leading to its node and its slot there:
/// `a/b` is `a`, `b` and `Here`; `a/#` is `a` and `Hash`; `#` is no level and `Hash`.
#[derive(Clone, Copy)]
struct Path<'f> {
    levels: Option<&'f str>,
    slot: Slot,
}

impl<'f> Path<'f> {
    fn of(filter: &'f str) -> Self {
        if filter == "#" {
            return Path {
                levels: None,
                slot: Slot::Hash,
            };
        }
        match filter.strip_suffix("/#") {
            Some(prefix) => Path {
                levels: Some(prefix),
                slot: Slot::Hash,
            },
            None => Path {
                levels: Some(filter),
                slot: Slot::Here,
            },
        }
    }

    fn levels(self) -> impl Iterator<Item = &'f str> {
        self.levels.into_iter().flat_map(|p| p.split('/'))
    }
}

impl<K: Eq + Hash + Clone, V> SubscriptionTree<K, V> {
    /// An empty tree.
    pub fn new() -> Self {
        SubscriptionTree {
            root: Node::default(),
            len: 0,
        }
    }

    /// Adds or replaces the subscription of `key` to `filter`, which may be shared
    /// (`$share/{group}/{filter}`).
    ///
    /// Returns the options it replaced, so the caller can tell a new subscription from
    /// a repeated one (Retain Handling 1 sends retained messages only for new ones
    /// [MQTT-3.3.1-10]). An invalid filter is rejected before anything is stored.
    pub fn subscribe(&mut self, filter: &str, key: K, value: V) -> Result<Option<V>, TopicError> {
        let shared = parse_shared(filter)?;
        let inner = shared.map_or(filter, |s| s.filter);
        let subscribers = self.root.subscribers_or_insert(inner);
        let replaced = match shared {
            None => subscribers.direct.insert(key, value),
            Some(s) => subscribers
                .group_or_insert(s.group, filter)
                .insert(key, value),
        };
        if replaced.is_none() {
            self.len += 1;
        }
        Ok(replaced)
    }

    /// Removes the subscription of `key` to `filter` and returns its options, or `None`
    /// when there was none (v5 UNSUBACK answers 0x11 then).
    ///
    /// Nodes left without subscriptions or children are freed, so memory returns to
    /// where it was once a burst of subscriptions is gone.
    pub fn unsubscribe(&mut self, filter: &str, key: &K) -> Option<V> {
        let shared = parse_shared(filter).ok()?;
        let path = Path::of(shared.map_or(filter, |s| s.filter));
        let node = self.root.descend_mut(path.levels())?;
        let removed = node.remove(path.slot, shared.map(|s| s.group), key)?;
        self.len -= 1;
        self.prune(path);
        Some(removed)
    }

    /// Calls `f` once for every subscription whose filter matches `topic`, following
    /// `+` and `#` [MQTT-4.7.1-2] [MQTT-4.7.1-3] and keeping topics that start with `$`
    /// away from filters that start with a wildcard [MQTT-4.7.2-1]. A shared group is
    /// reported once, as a whole.
    ///
    /// `topic` must be a valid topic name; matching allocates only when the topic can
    /// follow both a literal and a `+` branch at the same level.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(Match<'a, K, V>)) {
        let mut pending: Vec<(&'a Node<K, V>, Split<'_, char>)> = Vec::new();
        let mut levels = topic.split('/');
        let mut node = &self.root;
        // At the root, `$` topics skip the `+` and `#` branches [MQTT-4.7.2-1].
        let mut wildcards = !topic.starts_with('$');
        loop {
            if wildcards {
                emit(node.hash.as_deref(), &mut f);
            }
            let next = match levels.next() {
                None => {
                    emit(node.here.as_deref(), &mut f);
                    None
                }
                Some(level) => node.step(level, wildcards, &levels, &mut pending),
            };
            wildcards = true;
            node = match next {
                Some(n) => n,
                None => match pending.pop() {
                    Some((n, rest)) => {
                        levels = rest;
                        n
                    }
                    None => return,
                },
            };
        }
    }

    /// Number of subscriptions, counting each shared group member once.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no session subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frees the longest chain of nodes at the end of `path` that hold nothing but the
    /// next node of the chain.
    fn prune(&mut self, path: Path<'_>) {
        let Some(depth) = self.root.prunable_from(path.levels()) else {
            return;
        };
        let mut levels = path.levels();
        let parent = self.root.descend_mut(levels.by_ref().take(depth - 1));
        if let (Some(parent), Some(level)) = (parent, levels.next()) {
            parent.remove_child(level);
        }
    }
}

impl<K: Eq + Hash + Clone, V> Default for SubscriptionTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Summarises the tree, so routing state that embeds it can derive `Debug` without
/// dumping every subscription.
impl<K, V> std::fmt::Debug for SubscriptionTree<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionTree")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Reports every subscription of one filter.
fn emit<'a, K, V>(subscribers: Option<&'a Subscribers<K, V>>, f: &mut impl FnMut(Match<'a, K, V>)) {
    let Some(s) = subscribers else {
        return;
    };
    for (key, value) in s.direct.iter() {
        f(Match::Direct {
            key,
            value,
            filter: &s.filter,
        });
    }
    for (group, g) in s.shared.iter() {
        f(Match::Shared {
            group,
            filter: &s.filter,
            id: &g.id,
            members: &g.members,
        });
    }
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: SmallMap::default(),
            plus: None,
            here: None,
            hash: None,
        }
    }
}

impl<K: Eq + Hash + Clone, V> Node<K, V> {
    /// The branches a topic level can follow from this node: the literal child is
    /// returned, the `+` child too when it is the only one, otherwise it is queued in
    /// `pending` with the remaining levels.
    fn step<'a, 't>(
        &'a self,
        level: &str,
        wildcards: bool,
        rest: &Split<'t, char>,
        pending: &mut Vec<(&'a Node<K, V>, Split<'t, char>)>,
    ) -> Option<&'a Node<K, V>> {
        let literal = self.children.get(level);
        let plus = self.plus.as_deref().filter(|_| wildcards);
        match (literal, plus) {
            (Some(literal), Some(plus)) => {
                pending.push((plus, rest.clone()));
                Some(literal)
            }
            (literal, plus) => literal.or(plus),
        }
    }

    /// The subscribers of `filter` (a valid, non-shared filter), creating the path.
    fn subscribers_or_insert(&mut self, filter: &str) -> &mut Subscribers<K, V> {
        let path = Path::of(filter);
        let mut node = self;
        for level in path.levels() {
            node = node.child_or_insert(level);
        }
        let slot = match path.slot {
            Slot::Here => &mut node.here,
            Slot::Hash => &mut node.hash,
        };
        slot.get_or_insert_with(|| Box::new(Subscribers::new(filter)))
    }

    fn child_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        if level == "+" {
            self.plus.get_or_insert_with(Box::default)
        } else {
            self.children.get_or_insert_with(level, Node::default)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level)
        }
    }

    fn child(&self, level: &str) -> Option<&Node<K, V>> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level)
        }
    }

    fn descend_mut<'f>(
        &mut self,
        levels: impl Iterator<Item = &'f str>,
    ) -> Option<&mut Node<K, V>> {
        let mut node = self;
        for level in levels {
            node = node.child_mut(level)?;
        }
        Some(node)
    }

    /// Removes one subscription from a slot, dropping the slot once it is empty.
    fn remove(&mut self, slot: Slot, group: Option<&str>, key: &K) -> Option<V> {
        let slot = match slot {
            Slot::Here => &mut self.here,
            Slot::Hash => &mut self.hash,
        };
        let subscribers = slot.as_deref_mut()?;
        let removed = subscribers.remove(group, key)?;
        if subscribers.is_empty() {
            *slot = None;
        }
        Some(removed)
    }

    fn remove_child(&mut self, level: &str) {
        if level == "+" {
            self.plus = None;
        } else {
            self.children.remove(level);
        }
    }

    /// Number of child nodes, `+` included.
    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    /// Whether this node would be useless without its one child on the path (or
    /// without anything at all when it ends the path).
    fn holds_only_path(&self, is_last: bool) -> bool {
        self.here.is_none() && self.hash.is_none() && self.child_count() == usize::from(!is_last)
    }

    /// The depth (1 = a child of this node) of the first node of the chain at the end
    /// of `levels` that can be removed with everything below it, if any.
    fn prunable_from<'f>(&self, levels: impl Iterator<Item = &'f str>) -> Option<usize> {
        let mut levels = levels.peekable();
        let mut node = self;
        let mut first_prunable = None;
        let mut depth = 0;
        while let Some(level) = levels.next() {
            node = node.child(level)?;
            depth += 1;
            if !node.holds_only_path(levels.peek().is_none()) {
                first_prunable = None;
            } else if first_prunable.is_none() {
                first_prunable = Some(depth);
            }
        }
        first_prunable
    }
}

/// Drops the subtree iteratively: the default drop glue recurses once per level.
impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        drain_children(self, &mut pending);
        while let Some(mut node) = pending.pop() {
            drain_children(&mut node, &mut pending);
        }
    }
}

/// Moves a node's children out, so they can be dropped one by one.
fn drain_children<K, V>(node: &mut Node<K, V>, out: &mut Vec<Node<K, V>>) {
    out.extend(node.children.drain_values());
    if let Some(plus) = node.plus.take() {
        out.push(*plus);
    }
}

impl<K: Eq + Hash + Clone, V> Subscribers<K, V> {
    fn new(filter: &str) -> Self {
        Subscribers {
            filter: filter.into(),
            direct: SmallMap::default(),
            shared: SmallMap::default(),
        }
    }

    fn group_or_insert(&mut self, group: &str, id: &str) -> &mut SharedGroup<K, V> {
        self.shared
            .get_or_insert_with(group, || SharedGroup::new(id))
    }

    fn remove(&mut self, group: Option<&str>, key: &K) -> Option<V> {
        let Some(group) = group else {
            return self.direct.remove(key);
        };
        let members = self.shared.get_mut(group)?;
        let removed = members.remove(key)?;
        if members.members.is_empty() {
            self.shared.remove(group);
        }
        Some(removed)
    }

    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.shared.is_empty()
    }
}

impl<K: Eq + Hash + Clone, V> SharedGroup<K, V> {
    fn new(id: &str) -> Self {
        SharedGroup {
            id: id.into(),
            members: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(&i) = self.index.get(&key) {
            if let Some(member) = self.members.get_mut(i) {
                return Some(std::mem::replace(&mut member.1, value));
            }
        }
        self.index.insert(key.clone(), self.members.len());
        self.members.push((key, value));
        None
    }

    /// Removes a member by swapping the last one into its place.
    fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.index.remove(key)?;
        let (_, value) = self.members.swap_remove(i);
        if let Some((moved, _)) = self.members.get(i) {
            self.index.insert(moved.clone(), i);
        }
        Some(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mqtt::topic::matches;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    impl<K, V> SubscriptionTree<K, V> {
        /// Whether the tree holds no node besides a bare root.
        fn root_is_bare(&self) -> bool {
            let r = &self.root;
            r.children.is_empty() && r.plus.is_none() && r.here.is_none() && r.hash.is_none()
        }
    }

    /// Matches in a comparable form: direct (filter, key, value) and shared
    /// id -> sorted members.
    type Seen = (
        BTreeSet<(String, u8, u32)>,
        BTreeMap<String, Vec<(u8, u32)>>,
    );

    fn collect(tree: &SubscriptionTree<u8, u32>, topic: &str) -> Seen {
        let mut direct = BTreeSet::new();
        let mut shared = BTreeMap::new();
        tree.for_each_match(topic, |m| match m {
            Match::Direct { key, value, filter } => {
                assert!(
                    direct.insert((filter.to_string(), *key, *value)),
                    "visited twice"
                );
            }
            Match::Shared {
                group,
                filter,
                id,
                members,
            } => {
                assert_eq!(id, format!("$share/{group}/{filter}"));
                assert!(!members.is_empty());
                let mut members = members.to_vec();
                members.sort();
                assert!(
                    shared.insert(id.to_string(), members).is_none(),
                    "group visited twice"
                );
            }
        });
        (direct, shared)
    }

    fn count<K: Eq + Hash + Clone, V>(tree: &SubscriptionTree<K, V>, topic: &str) -> usize {
        let mut n = 0;
        tree.for_each_match(topic, |_| n += 1);
        n
    }

    fn brute_force(subs: &BTreeMap<(String, u8), u32>, topic: &str) -> Seen {
        let mut direct = BTreeSet::new();
        let mut shared: BTreeMap<String, Vec<(u8, u32)>> = BTreeMap::new();
        for ((filter, key), value) in subs {
            match parse_shared(filter).unwrap() {
                None if matches(filter, topic) => {
                    direct.insert((filter.clone(), *key, *value));
                }
                Some(s) if matches(s.filter, topic) => {
                    shared
                        .entry(filter.clone())
                        .or_default()
                        .push((*key, *value));
                }
                _ => {}
            }
        }
        shared.values_mut().for_each(|m| m.sort());
        (direct, shared)
    }

    #[test]
    fn direct_and_wildcards() {
        let mut t = SubscriptionTree::new();
        assert_eq!(t.subscribe("a/b", 1, "x").unwrap(), None);
        assert_eq!(t.subscribe("a/b", 1, "y").unwrap(), Some("x"));
        t.subscribe("a/+", 2, "p").unwrap();
        t.subscribe("a/#", 3, "h").unwrap();
        t.subscribe("#", 4, "all").unwrap();
        t.subscribe("+/+", 5, "pp").unwrap();
        assert_eq!(t.len(), 5);
        let mut keys = Vec::new();
        t.for_each_match("a/b", |m| {
            if let Match::Direct { key, .. } = m {
                keys.push(*key);
            }
        });
        keys.sort();
        assert_eq!(keys, [1, 2, 3, 4, 5]);
        let mut keys = Vec::new();
        t.for_each_match("a", |m| {
            if let Match::Direct { key, filter, .. } = m {
                keys.push((*key, filter.to_string()));
            }
        });
        keys.sort();
        assert_eq!(keys, [(3, "a/#".to_string()), (4, "#".to_string())]);
    }

    #[test]
    fn dollar_topics_skip_leading_wildcards() {
        let mut t = SubscriptionTree::new();
        t.subscribe("#", 1, ()).unwrap();
        t.subscribe("+/uptime", 2, ()).unwrap();
        t.subscribe("$SYS/#", 3, ()).unwrap();
        t.subscribe("$share/g/#", 4, ()).unwrap();
        let mut seen = Vec::new();
        t.for_each_match("$SYS/uptime", |m| {
            seen.push(matches!(m, Match::Direct { key: 3, .. }))
        });
        assert_eq!(seen, [true]);
    }

    #[test]
    fn shared_groups() {
        let mut t = SubscriptionTree::new();
        assert_eq!(t.subscribe("$share/g/a/+", 1, 10).unwrap(), None);
        assert_eq!(t.subscribe("$share/g/a/+", 2, 20).unwrap(), None);
        assert_eq!(t.subscribe("$share/g/a/+", 1, 11).unwrap(), Some(10));
        assert_eq!(t.subscribe("$share/h/a/+", 1, 30).unwrap(), None);
        assert_eq!(t.subscribe("a/+", 1, 40).unwrap(), None);
        assert_eq!(t.len(), 4);
        let (direct, shared) = collect(&t, "a/x");
        assert_eq!(direct.len(), 1);
        assert_eq!(shared["$share/g/a/+"], [(1, 11), (2, 20)]);
        assert_eq!(shared["$share/h/a/+"], [(1, 30)]);
        assert_eq!(t.unsubscribe("$share/g/a/+", &1), Some(11));
        assert_eq!(t.unsubscribe("$share/g/a/+", &1), None);
        let (_, shared) = collect(&t, "a/x");
        assert_eq!(shared["$share/g/a/+"], [(2, 20)]);
    }

    #[test]
    fn invalid_filters_are_rejected() {
        let mut t = SubscriptionTree::new();
        assert_eq!(
            t.subscribe("a/#/b", 1, ()),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            t.subscribe("$share/g", 1, ()),
            Err(TopicError::SharedFilterMissing)
        );
        assert_eq!(t.unsubscribe("$share/g", &1), None);
        assert!(t.is_empty());
        assert!(t.root_is_bare());
    }

    #[test]
    fn unsubscribe_prunes_after_churn() {
        let mut t = SubscriptionTree::new();
        let filters: Vec<String> = (0..10_000)
            .map(|i| match i % 4 {
                0 => format!("dev/{i}/telemetry"),
                1 => format!("dev/{i}/+/#"),
                2 => format!("$share/g{}/dev/{i}", i % 7),
                _ => format!("+/{i}/#"),
            })
            .collect();
        for (i, f) in filters.iter().enumerate() {
            t.subscribe(f, i, ()).unwrap();
        }
        t.subscribe("dev/keep", 0, ()).unwrap();
        assert_eq!(t.len(), 10_001);
        for (i, f) in filters.iter().enumerate() {
            assert_eq!(t.unsubscribe(f, &i), Some(()), "{f}");
        }
        assert_eq!(t.root.children.len(), 1);
        assert!(t.root.plus.is_none());
        assert_eq!(t.root.children.get("dev").unwrap().children.len(), 1);
        t.unsubscribe("dev/keep", &0);
        assert!(t.is_empty());
        assert!(t.root_is_bare());
    }

    #[test]
    fn pruning_keeps_nodes_still_in_use() {
        let mut t = SubscriptionTree::new();
        t.subscribe("a/b/c/d", 1, ()).unwrap();
        t.subscribe("a/b", 2, ()).unwrap();
        t.subscribe("a/b/#", 3, ()).unwrap();
        t.unsubscribe("a/b/c/d", &1);
        assert!(t
            .root
            .children
            .get("a")
            .unwrap()
            .children
            .get("b")
            .unwrap()
            .children
            .is_empty());
        assert_eq!(count(&t, "a/b"), 2);
        t.unsubscribe("a/b", &2);
        assert_eq!(count(&t, "a/b/z"), 1);
        t.unsubscribe("a/b/#", &3);
        assert!(t.root_is_bare());
    }

    #[test]
    fn deep_filters_do_not_recurse() {
        let deep = vec!["a"; 30_000].join("/");
        let mut t = SubscriptionTree::new();
        t.subscribe(&deep, 1, ()).unwrap();
        t.subscribe(&format!("{deep}/#"), 2, ()).unwrap();
        t.subscribe("+/+/#", 3, ()).unwrap();
        assert_eq!(count(&t, &deep), 3);
        assert_eq!(t.unsubscribe(&deep, &1), Some(()));
        drop(t);
        let mut t = SubscriptionTree::new();
        t.subscribe(&deep, 1, ()).unwrap();
        assert_eq!(t.unsubscribe(&deep, &1), Some(()));
        assert!(t.root_is_bare());
    }

    const FILTERS: &[&str] = &[
        "a",
        "a/b",
        "a/+",
        "+/b",
        "+",
        "#",
        "a/#",
        "+/#",
        "a/+/c",
        "$s/#",
        "$s/+",
        "/",
        "/+",
        "a//b",
        "$share/g/a/+",
        "$share/g/#",
        "$share/h/a/#",
        "$share/h/+/b",
        "$share/g/$s/+",
        "$share/g/a/b",
    ];
    const TOPICS: &[&str] = &[
        "a", "a/b", "b", "a/b/c", "a/x/c", "$s", "$s/b", "/", "/b", "a//b", "a/", "x/b",
    ];

    #[derive(Clone, Debug)]
    enum Op {
        Sub(usize, u8, u32),
        Unsub(usize, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..FILTERS.len(), 0..4u8, any::<u32>()).prop_map(|(f, k, v)| Op::Sub(f, k, v)),
            (0..FILTERS.len(), 0..4u8).prop_map(|(f, k)| Op::Unsub(f, k)),
        ]
    }

    proptest! {
        #[test]
        fn matches_brute_force(ops in prop::collection::vec(op(), 0..60)) {
            let mut tree = SubscriptionTree::new();
            let mut reference: BTreeMap<(String, u8), u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Sub(f, k, v) => {
                        let expected = reference.insert((FILTERS[f].to_string(), k), v);
                        prop_assert_eq!(tree.subscribe(FILTERS[f], k, v).unwrap(), expected);
                    }
                    Op::Unsub(f, k) => {
                        let expected = reference.remove(&(FILTERS[f].to_string(), k));
                        prop_assert_eq!(tree.unsubscribe(FILTERS[f], &k), expected);
                    }
                }
                prop_assert_eq!(tree.len(), reference.len());
            }
            for topic in TOPICS {
                prop_assert_eq!(collect(&tree, topic), brute_force(&reference, topic), "topic {}", topic);
            }
            for (filter, key) in reference.keys() {
                prop_assert!(tree.unsubscribe(filter, key).is_some());
            }
            prop_assert!(tree.is_empty());
            prop_assert!(tree.root_is_bare());
        }
    }
}
