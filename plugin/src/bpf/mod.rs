//! The embedded BPF object: node setup, pins, maps, attachment. (in progress)
