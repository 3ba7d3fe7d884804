import Foundation
import WasmKit

/// The WASI preview 1 a function sees (contract "ABI"): its arguments and environment, stdin (the
/// request body, then EOF), stdout and stderr captured with caps, clocks, random bytes, sleeping
/// on clocks within the deadline, and exit. No files, no sockets: every other preview-1 function
/// answers ENOSYS. Linking this small host costs a few microseconds per call where WasmKit's full
/// WASI costs about 90 µs. Every guest pointer is checked against the memory before it is read or
/// written: a bad one answers EFAULT, never touches the host.
final class WASICall {
    private(set) var arguments: [String]
    private(set) var environment: [String]
    private var stdin: [UInt8]
    private var stdinOffset = 0
    private(set) var stdout: [UInt8] = []
    private(set) var stderr: [UInt8] = []
    private(set) var maxOutputBytes: Int
    let maxStderrBytes = 10_000
    private(set) var deadline: DispatchTime
    /// Set when the guest wrote past `maxOutputBytes`: the call is stopped and answered MB866.
    private(set) var outputOverflowed = false

    init(arguments: [String], environment: [String], stdin: [UInt8], maxOutputBytes: Int, deadline: DispatchTime) {
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.maxOutputBytes = maxOutputBytes
        self.deadline = deadline
    }

    /// A new call on an instance kept from an earlier one (JavaScript's QuickJS instances): the
    /// earlier call's input and output are gone.
    func reset(environment: [String], stdin: [UInt8], maxOutputBytes: Int, deadline: DispatchTime) {
        self.arguments = []
        self.environment = environment
        self.stdin = stdin
        self.stdinOffset = 0
        self.stdout = []
        self.stderr = []
        self.maxOutputBytes = maxOutputBytes
        self.deadline = deadline
        self.outputOverflowed = false
    }

    /// Thrown by `proc_exit` to end the call with its status.
    struct Exit: Error {
        let status: Int32
    }

    /// Thrown when stdout passes its cap, to stop the guest at once.
    struct OutputOverflow: Error {}

    enum Errno: UInt32 {
        case success = 0
        case badf = 8
        case fault = 21
        case inval = 28
        case nosys = 52
        case spipe = 70
    }

    // MARK: - Linking

    /// Every preview-1 function the module imports, ours or ENOSYS, so any WASI command links.
    func imports(for module: Module, store: Store) -> Imports {
        var imports = Imports()
        for entry in module.imports where entry.module == Self.moduleName {
            guard let signature = Self.signatures[entry.name] else { continue }
            let function = Function(store: store, parameters: signature.parameters, results: signature.results) { [unowned self] caller, arguments in
                try self.call(entry.name, caller: caller, arguments)
            }
            imports.define(module: Self.moduleName, name: entry.name, function)
        }
        return imports
    }

    static let moduleName = "wasi_snapshot_preview1"

    private func call(_ name: String, caller: borrowing Caller, _ arguments: [Value]) throws -> [Value] {
        guard let memory = caller.instance?.exports[memory: "memory"] else { return [.i32(Errno.fault.rawValue)] }
        let guest = GuestMemoryView(memory: memory)
        func i32(_ index: Int) -> UInt32 { if case .i32(let value) = arguments[index] { value } else { 0 } }
        func i64(_ index: Int) -> UInt64 { if case .i64(let value) = arguments[index] { value } else { 0 } }
        let errno: Errno
        switch name {
        case "args_sizes_get": errno = sizes(arguments: self.arguments, guest, count: i32(0), size: i32(1))
        case "args_get": errno = strings(self.arguments, guest, pointers: i32(0), buffer: i32(1))
        case "environ_sizes_get": errno = sizes(arguments: environment, guest, count: i32(0), size: i32(1))
        case "environ_get": errno = strings(environment, guest, pointers: i32(0), buffer: i32(1))
        case "clock_res_get": errno = guest.store64(i32(1), 1_000) ? .success : .fault
        case "clock_time_get":
            let now: UInt64 = i32(0) == 0 ? UInt64(Date().timeIntervalSince1970 * 1e9) : DispatchTime.now().uptimeNanoseconds
            errno = guest.store64(i32(2), now) ? .success : .fault
        case "random_get":
            var bytes = [UInt8](repeating: 0, count: Int(i32(1)))
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
            errno = guest.write(i32(0), bytes) ? .success : .fault
        case "fd_read": errno = read(fd: i32(0), guest, iovs: i32(1), count: i32(2), result: i32(3))
        case "fd_write": errno = try write(fd: i32(0), guest, iovs: i32(1), count: i32(2), result: i32(3))
        case "fd_fdstat_get": errno = fdstat(fd: i32(0), guest, into: i32(1))
        case "fd_close": errno = i32(0) <= 2 ? .success : .badf
        case "fd_seek", "fd_tell": errno = i32(0) <= 2 ? .spipe : .badf
        case "fd_prestat_get", "fd_prestat_dir_name": errno = .badf
        case "poll_oneoff": errno = poll(guest, subscriptions: i32(0), events: i32(1), count: i32(2), result: i32(3))
        case "sched_yield": errno = .success
        case "proc_exit": throw Exit(status: Int32(bitPattern: i32(0)))
        default: errno = .nosys
        }
        return [.i32(errno.rawValue)]
    }

    // MARK: - Arguments and environment

    private func sizes(arguments: [String], _ guest: GuestMemoryView, count: UInt32, size: UInt32) -> Errno {
        let bytes = arguments.reduce(0) { $0 + $1.utf8.count + 1 }
        return guest.store32(count, UInt32(arguments.count)) && guest.store32(size, UInt32(bytes)) ? .success : .fault
    }

    private func strings(_ values: [String], _ guest: GuestMemoryView, pointers: UInt32, buffer: UInt32) -> Errno {
        var offset = buffer
        for (index, value) in values.enumerated() {
            let bytes = Array(value.utf8) + [0]
            guard guest.store32(pointers &+ UInt32(index * 4), offset), guest.write(offset, bytes) else { return .fault }
            offset = offset &+ UInt32(bytes.count)
        }
        return .success
    }

    // MARK: - Standard streams

    private func read(fd: UInt32, _ guest: GuestMemoryView, iovs: UInt32, count: UInt32, result: UInt32) -> Errno {
        guard fd == 0 else { return .badf }
        var total: UInt32 = 0
        for index in 0..<count {
            guard let base = guest.load32(iovs &+ index * 8), let length = guest.load32(iovs &+ index * 8 + 4) else { return .fault }
            let available = stdin.count - stdinOffset
            let take = min(Int(length), available)
            if take == 0 { break }
            guard guest.write(base, Array(stdin[stdinOffset..<stdinOffset + take])) else { return .fault }
            stdinOffset += take
            total += UInt32(take)
        }
        return guest.store32(result, total) ? .success : .fault
    }

    private func write(fd: UInt32, _ guest: GuestMemoryView, iovs: UInt32, count: UInt32, result: UInt32) throws -> Errno {
        guard fd == 1 || fd == 2 else { return .badf }
        var total: UInt32 = 0
        for index in 0..<count {
            guard let base = guest.load32(iovs &+ index * 8), let length = guest.load32(iovs &+ index * 8 + 4),
                let bytes = guest.read(base, Int(length))
            else { return .fault }
            if fd == 1 {
                guard stdout.count + bytes.count <= maxOutputBytes else {
                    outputOverflowed = true
                    throw OutputOverflow()
                }
                stdout += bytes
            } else if stderr.count < maxStderrBytes {
                stderr += bytes.prefix(maxStderrBytes - stderr.count)
            }
            total += length
        }
        return guest.store32(result, total) ? .success : .fault
    }

    /// A character device with read or write rights, for libc's isatty and buffering checks.
    private func fdstat(fd: UInt32, _ guest: GuestMemoryView, into pointer: UInt32) -> Errno {
        guard fd <= 2 else { return .badf }
        var bytes = [UInt8](repeating: 0, count: 24)
        bytes[0] = 2  // character device
        let rights: UInt64 = fd == 0 ? 0x2 : 0x40  // fd_read / fd_write
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: rights >> (8 * index)) }
        return guest.write(pointer, bytes) ? .success : .fault
    }

    // MARK: - Sleeping

    /// Clock subscriptions only: sleeps until the earliest, never past the call's deadline, and
    /// reports every clock subscription as fired.
    private func poll(_ guest: GuestMemoryView, subscriptions: UInt32, events: UInt32, count: UInt32, result: UInt32) -> Errno {
        guard count > 0 else { return .inval }
        var earliest: UInt64 = .max
        var fired: [UInt64] = []
        for index in 0..<count {
            let base = subscriptions &+ index * 48
            guard let userdata = guest.load64(base), let tag = guest.read(base + 8, 1)?.first else { return .fault }
            guard tag == 0, let timeout = guest.load64(base + 24), let flags = guest.read(base + 40, 2) else { continue }
            var wait = timeout
            if flags[0] & 1 == 1 {
                // An absolute time on the clock: as far from now.
                let now = DispatchTime.now().uptimeNanoseconds
                wait = timeout > now ? timeout - now : 0
            }
            earliest = min(earliest, wait)
            fired.append(userdata)
        }
        guard !fired.isEmpty else { return .inval }
        let left = deadline.uptimeNanoseconds > DispatchTime.now().uptimeNanoseconds ? deadline.uptimeNanoseconds - DispatchTime.now().uptimeNanoseconds : 0
        let sleep = min(earliest, left)
        if sleep > 0 { Thread.sleep(forTimeInterval: Double(sleep) / 1e9) }
        for (index, userdata) in fired.enumerated() {
            var event = [UInt8](repeating: 0, count: 32)
            for byte in 0..<8 { event[byte] = UInt8(truncatingIfNeeded: userdata >> (8 * byte)) }
            guard guest.write(events &+ UInt32(index * 32), event) else { return .fault }
        }
        return guest.store32(result, UInt32(fired.count)) ? .success : .fault
    }

    // MARK: - Preview 1's signatures

    /// Every preview-1 function with its parameters (results: one i32 errno; `proc_exit`: none).
    static let signatures: [String: (parameters: [ValueType], results: [ValueType])] = {
        let table: [(String, String)] = [
            ("args_get", "ii"), ("args_sizes_get", "ii"), ("environ_get", "ii"), ("environ_sizes_get", "ii"),
            ("clock_res_get", "ii"), ("clock_time_get", "iIi"), ("fd_advise", "iIIi"), ("fd_allocate", "iII"), ("fd_close", "i"),
            ("fd_datasync", "i"), ("fd_fdstat_get", "ii"), ("fd_fdstat_set_flags", "ii"), ("fd_fdstat_set_rights", "iII"),
            ("fd_filestat_get", "ii"), ("fd_filestat_set_size", "iI"), ("fd_filestat_set_times", "iIIi"), ("fd_pread", "iiiIi"),
            ("fd_prestat_get", "ii"), ("fd_prestat_dir_name", "iii"), ("fd_pwrite", "iiiIi"), ("fd_read", "iiii"), ("fd_readdir", "iiiIi"),
            ("fd_renumber", "ii"), ("fd_seek", "iIii"), ("fd_sync", "i"), ("fd_tell", "ii"), ("fd_write", "iiii"),
            ("path_create_directory", "iii"), ("path_filestat_get", "iiiii"), ("path_filestat_set_times", "iiiiIIi"),
            ("path_link", "iiiiiii"), ("path_open", "iiiiiIIii"), ("path_readlink", "iiiiii"), ("path_remove_directory", "iii"),
            ("path_rename", "iiiiii"), ("path_symlink", "iiiii"), ("path_unlink_file", "iii"), ("poll_oneoff", "iiii"),
            ("proc_raise", "i"), ("sched_yield", ""), ("random_get", "ii"), ("sock_accept", "iii"), ("sock_recv", "iiiiii"),
            ("sock_send", "iiiii"), ("sock_shutdown", "ii"),
        ]
        var signatures: [String: (parameters: [ValueType], results: [ValueType])] = ["proc_exit": ([.i32], [])]
        for (name, shape) in table {
            signatures[name] = (shape.map { $0 == "I" ? ValueType.i64 : .i32 }, [.i32])
        }
        return signatures
    }()
}

/// Guest memory with every access checked: nil or false instead of a trap in the host.
struct GuestMemoryView {
    let memory: Memory

    func read(_ offset: UInt32, _ count: Int) -> [UInt8]? {
        guard count >= 0, Int(offset) + count <= memory.byteCount else { return nil }
        if count == 0 { return [] }
        return memory.withUnsafeBufferPointer(offset: UInt(offset), count: count) { Array($0) }
    }

    func write(_ offset: UInt32, _ bytes: [UInt8]) -> Bool {
        guard Int(offset) + bytes.count <= memory.byteCount else { return false }
        if bytes.isEmpty { return true }
        memory.withUnsafeMutableBufferPointer(offset: UInt(offset), count: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
        return true
    }

    func load32(_ offset: UInt32) -> UInt32? {
        read(offset, 4).map { bytes in bytes.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) } }
    }

    func load64(_ offset: UInt32) -> UInt64? {
        read(offset, 8).map { bytes in bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) } }
    }

    func store32(_ offset: UInt32, _ value: UInt32) -> Bool {
        write(offset, (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    func store64(_ offset: UInt32, _ value: UInt64) -> Bool {
        write(offset, (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }
}
