fn main() { println!("vx-bench: not built yet"); }
