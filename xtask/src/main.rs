mod ebpf;
fn main() {}
