//! The monitor (filled in by the monitor work).
pub fn main(_args: &[String]) -> i32 {
    eprintln!("moorage-runtime monitor: not implemented yet");
    1
}
