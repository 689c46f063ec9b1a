internal import CRecKernels

/// The SIMD instruction set the C kernels run with.
///
/// ``best`` is what this CPU and operating system support, found once with CPUID. Choosing a
/// lower level is for tests and for measuring; every level computes the same results up to
/// floating-point summation order.
public enum SIMDLevel: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// Portable C, any CPU.
    case scalar = 0
    /// x86-64 AVX2 with FMA.
    case avx2 = 1
    /// x86-64 AVX-512F.
    case avx512 = 2

    /// The highest level this machine supports.
    public static let best = SIMDLevel(rawValue: Int(rk_best_isa())) ?? .scalar

    /// The levels this machine can run, lowest first.
    public static var supported: [SIMDLevel] { allCases.filter { $0 <= best } }

    public static func < (lhs: SIMDLevel, rhs: SIMDLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "AVX2+FMA"
        case .avx512: "AVX-512"
        }
    }
}

/// The one internal layer over the C kernels (`CRecKernels`): Swift buffers and labeled
/// arguments in, C calls out. The rest of RecKernels calls these, ``TopKHeaps`` and
/// ``SkipGramJob`` (in `Backends/`); only `Backends/` imports the C modules.
enum Kernels {
    /// CPUs in this process's affinity mask (the online count where there is none).
    static func availableCPUs() -> Int { Int(rk_available_cpus()) }

    static func allFinite(_ values: UnsafeBufferPointer<Float>, level: SIMDLevel = .best) -> Bool {
        guard let base = values.baseAddress else { return true }
        return rk_all_finite(Int32(level.rawValue), base, values.count) != 0
    }

    static func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return rk_crc32c(crc, base, bytes.count)
    }

    /// Squared Euclidean norms of the rows of `table`.
    static func squaredRowNorms(_ table: EmbeddingTable, level: SIMDLevel = .best) -> [Float] {
        [Float](unsafeUninitializedCapacity: table.rows) { norms, initialized in
            table.withUnsafeBufferPointer { values in
                rk_row_squared_norms(Int32(level.rawValue), values.baseAddress!, table.rows, table.dimensions,
                                     table.dimensions, norms.baseAddress!)
            }
            initialized = table.rows
        }
    }

    static func packFloats(items: Int, dimensions: Int) -> Int {
        rk_sgemm_pack_floats(items, dimensions)
    }

    /// scores[i, j] = dot(queries row i, items row j), row-major with `items` columns.
    static func tileProduct(level: SIMDLevel, queries: UnsafePointer<Float>, queryCount: Int,
                            items: UnsafePointer<Float>, itemCount: Int, dimensions: Int,
                            scores: UnsafeMutablePointer<Float>, pack: UnsafeMutablePointer<Float>) {
        if queryCount == 1 {
            rk_sgemv_n(Int32(level.rawValue), itemCount, dimensions, items, dimensions, queries, scores)
        } else {
            rk_sgemm_nt(Int32(level.rawValue), queryCount, itemCount, dimensions, queries, dimensions,
                        items, dimensions, scores, itemCount, pack)
        }
    }
}
