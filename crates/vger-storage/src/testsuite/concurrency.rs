//! Checks of writers racing each other and readers.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{expect_data, expect_listing, object_key, ok, pack_key, pattern};
use crate::{Storage, StorageError};

pub fn concurrent_puts_distinct_keys(storage: &dyn Storage) -> Result<(), String> {
    let key = |t: usize, i: usize| pack_key(t as u8, i as u64);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                scope.spawn(move || -> Result<(), String> {
                    for i in 0..20 {
                        ok(storage.put(&key(t, i), &pattern((t * 100 + i) as u64, 20_000)), "put")?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "writer thread panicked".to_owned())?)
    })?;
    for t in 0..8 {
        for i in 0..20 {
            expect_data(storage, &key(t, i), &pattern((t * 100 + i) as u64, 20_000))?;
        }
    }
    Ok(())
}

/// Writers race on one key while a reader checks that every read is one
/// complete written value, never a mix or a prefix.
pub fn concurrent_puts_same_key(storage: &dyn Storage) -> Result<(), String> {
    const LEN: usize = 1 << 20;
    let values: Vec<Vec<u8>> = (0..8).map(|t| pattern(1000 + t, LEN)).collect();
    let values = &values;
    let contended = object_key("index/", 0xc0);
    let contended = contended.as_str();
    let done = AtomicBool::new(false);
    let done = &done;
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(), String> {
            while !done.load(Ordering::Acquire) {
                match storage.get(contended) {
                    Ok(data) => ensure!(
                        values.contains(&data),
                        "a reader saw a value that no writer wrote ({} bytes)",
                        data.len()
                    ),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(format!("get while writing: {e}")),
                }
            }
            Ok(())
        });
        let writers: Vec<_> = values
            .iter()
            .map(|value| {
                scope.spawn(move || -> Result<(), String> {
                    for _ in 0..3 {
                        ok(storage.put(contended, value), "concurrent put")?;
                    }
                    Ok(())
                })
            })
            .collect();
        let written =
            writers.into_iter().try_for_each(|w| w.join().map_err(|_| "writer thread panicked".to_owned())?);
        done.store(true, Ordering::Release);
        let read = reader.join().map_err(|_| "reader thread panicked".to_owned())?;
        written.and(read)
    })?;
    let last = ok(storage.get(contended), "get after the race")?;
    ensure!(values.contains(&last), "final value is none of the written ones");
    expect_listing(storage, "", &[(contended.to_owned(), LEN as u64)])
}

/// Of threads racing `put_new` on one key, exactly one wins (locks rely
/// on it) and the stored object is the winner's.
pub fn concurrent_put_new_one_winner(storage: &dyn Storage) -> Result<(), String> {
    for round in 0..5 {
        let key = object_key("locks/", round);
        let key = key.as_str();
        let outcomes = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8u8).map(|t| scope.spawn(move || (t, storage.put_new(key, &[t; 1000])))).collect();
            racers
                .into_iter()
                .map(|r| r.join().map_err(|_| "racer thread panicked".to_owned()))
                .collect::<Result<Vec<_>, String>>()
        })?;
        let mut winners = Vec::new();
        for (t, outcome) in outcomes {
            match outcome {
                Ok(()) => winners.push(t),
                Err(StorageError::AlreadyExists { .. }) => {}
                Err(e) => return Err(format!("put_new race: unexpected error: {e}")),
            }
        }
        ensure!(winners.len() == 1, "put_new race on {key}: winners {winners:?}, want exactly one");
        let winner = winners.first().copied().unwrap_or_default();
        expect_data(storage, key, &[winner; 1000])?;
    }
    Ok(())
}
