//! A wake-up signal with a generation count, so a waiter never misses a notification that
//! happened between its last look and its wait.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct Wakeup {
    generation: Mutex<u64>,
    signal: Condvar,
}

impl Wakeup {
    pub fn notify(&self) {
        *self.generation.lock() += 1;
        self.signal.notify_all();
    }

    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Waits until the generation moves past `seen` or `timeout` passes; returns the generation.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let mut generation = self.generation.lock();
        if *generation == seen {
            self.signal.wait_for(&mut generation, timeout);
        }
        *generation
    }
}
