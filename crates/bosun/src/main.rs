//! The `bosun` binary: CLI, configuration and wiring. (In progress.)

fn main() {
    println!("bosun");
}
