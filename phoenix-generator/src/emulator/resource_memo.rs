//! What a pipeline worked out about each resource, remembered from one scrape to the next.
//!
//! Processes persist from scrape to scrape with the same attributes, mostly at the same place
//! in the snapshot. [`ResourceMemo`] finds the entry made for equal attributes at the
//! previous scrape without hashing them: first at the place the resource has now (shifted by
//! the offset of the last entry found elsewhere, which follows processes starting and
//! exiting), then through a table of the previous scrape's entries by the hash of their
//! attributes. An entry is used only when the attributes are the ones it was made from
//! ([`Attributes::same_as`]: a pointer comparison when the producer shares them, as the
//! simulator does); entries of resources absent from a scrape are dropped.

use phoenix_core::telemetry::Attributes;

use crate::ottl::{self, PrehashedMap};

/// One remembered resource.
#[derive(Debug)]
struct Entry<T> {
    /// The attributes as received.
    attributes: Attributes,
    /// Their [`ottl::attributes_hash`].
    hash: u64,
    value: T,
}

/// Per-resource values, by resource attributes, kept across scrapes; see the module
/// documentation. Entries stay where they are made (in [`ResourceMemo::entries`]); scrapes
/// list them by place.
#[derive(Debug)]
pub(crate) struct ResourceMemo<T> {
    /// Every entry; freed ones are `None`, and reused.
    entries: Vec<Option<Entry<T>>>,
    free: Vec<usize>,
    /// The previous scrape's entries, by place ([`TAKEN`] once found again).
    previous: Vec<usize>,
    /// The previous scrape's places by hash, built at the first miss of a scrape.
    index: Option<PrehashedMap<u64, Vec<usize>>>,
    /// The current scrape's entries, by place.
    current: Vec<usize>,
    /// Where the last entry found was, relative to the place asked for.
    shift: isize,
    buf: Vec<u8>,
}

/// A place of the previous scrape whose entry was found again.
const TAKEN: usize = usize::MAX;

impl<T> Default for ResourceMemo<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            previous: Vec::new(),
            index: None,
            current: Vec::new(),
            shift: 0,
            buf: Vec::new(),
        }
    }
}

impl<T> ResourceMemo<T> {
    /// Starts a scrape: the entries of the last one become the ones to find again.
    pub(crate) fn begin(&mut self) {
        self.end();
        std::mem::swap(&mut self.previous, &mut self.current);
        self.shift = 0;
    }

    /// Whether the entry at `slot` holds attributes equal to `attributes`.
    fn holds(&self, slot: usize, attributes: &Attributes) -> bool {
        self.entries
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|e| e.attributes.same_as(attributes))
    }

    /// The entry of the next resource of the scrape (whose attributes are `attributes`),
    /// made with `make` unless one was made for equal attributes at the previous scrape.
    /// Returns its index among the scrape's entries (the resource's place when every
    /// resource of the scrape is asked for in order).
    pub(crate) fn next(
        &mut self,
        attributes: &Attributes,
        make: impl FnOnce(&Attributes) -> T,
    ) -> usize {
        let place = self.current.len();
        let guess = place.checked_add_signed(self.shift);
        let found = match guess.and_then(|g| self.previous.get(g).map(|&slot| (g, slot))) {
            Some((g, slot)) if slot != TAKEN && self.holds(slot, attributes) => Some(g),
            _ => self.find(attributes),
        };
        let slot = match found {
            Some(g) => {
                self.shift = g.cast_signed() - place.cast_signed();
                std::mem::replace(&mut self.previous[g], TAKEN)
            }
            None => {
                let entry = Entry {
                    attributes: attributes.clone(),
                    hash: ottl::attributes_hash(attributes, &mut self.buf),
                    value: make(attributes),
                };
                match self.free.pop() {
                    Some(slot) => {
                        self.entries[slot] = Some(entry);
                        slot
                    }
                    None => {
                        self.entries.push(Some(entry));
                        self.entries.len() - 1
                    }
                }
            }
        };
        self.current.push(slot);
        place
    }

    /// The place in the previous scrape of an entry for `attributes` not found again yet,
    /// through the table by hash.
    fn find(&mut self, attributes: &Attributes) -> Option<usize> {
        let (previous, entries) = (&self.previous, &self.entries);
        let index = self.index.get_or_insert_with(|| {
            let mut index = PrehashedMap::<u64, Vec<usize>>::default();
            for (place, &slot) in previous.iter().enumerate() {
                if let Some(Some(e)) = entries.get(slot) {
                    index.entry(e.hash).or_default().push(place);
                }
            }
            index
        });
        if index.is_empty() {
            return None;
        }
        let hash = ottl::attributes_hash(attributes, &mut self.buf);
        index.get(&hash)?.iter().copied().find(|&place| {
            let slot = previous[place];
            slot != TAKEN
                && entries
                    .get(slot)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.attributes.same_as(attributes))
        })
    }

    /// The value of entry `i` of the current scrape.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let slot = *self.current.get(i)?;
        self.entries
            .get(slot)
            .and_then(Option::as_ref)
            .map(|e| &e.value)
    }

    /// The value of entry `i` of the current scrape, mutably.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let slot = *self.current.get(i)?;
        self.entries
            .get_mut(slot)
            .and_then(Option::as_mut)
            .map(|e| &mut e.value)
    }

    /// Drops what the scrape did not find again.
    pub(crate) fn end(&mut self) {
        for slot in self.previous.drain(..) {
            if let Some(e) = self.entries.get_mut(slot)
                && e.take().is_some()
            {
                self.free.push(slot);
            }
        }
        self.index = None;
    }
}

#[cfg(test)]
mod tests {
    use phoenix_core::telemetry::AnyValue;

    use super::*;

    fn attrs(pid: i64) -> Attributes {
        [("process.pid", AnyValue::Int(pid))].into_iter().collect()
    }

    /// Runs one scrape of `pids` and returns, per place, the pid each entry was made for
    /// and whether it was made at this scrape.
    fn scrape(memo: &mut ResourceMemo<(i64, u32)>, pids: &[i64], round: u32) -> Vec<(i64, u32)> {
        memo.begin();
        let places: Vec<usize> = pids
            .iter()
            .map(|&pid| memo.next(&attrs(pid), |_| (pid, round)))
            .collect();
        let out = places
            .iter()
            .map(|&i| *memo.get_mut(i).expect("an entry"))
            .collect();
        memo.end();
        out
    }

    #[test]
    fn entries_are_found_again_wherever_the_resource_moved() {
        let mut memo = ResourceMemo::default();
        assert_eq!(
            scrape(&mut memo, &[1, 2, 3, 4], 0),
            [(1, 0), (2, 0), (3, 0), (4, 0)]
        );
        // One exits, one starts, two swap places, a duplicate appears.
        assert_eq!(
            scrape(&mut memo, &[1, 3, 5, 4, 2, 2], 1),
            [(1, 0), (3, 0), (5, 1), (4, 0), (2, 0), (2, 1)]
        );
        // Entries of resources absent from a scrape are gone.
        assert_eq!(scrape(&mut memo, &[5], 2), [(5, 1)]);
        assert_eq!(scrape(&mut memo, &[1, 5], 3), [(1, 3), (5, 1)]);
    }
}
