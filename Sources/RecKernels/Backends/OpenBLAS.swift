internal import COpenBLAS

/// The OpenBLAS library RecKernels links, and the bare calls the benchmark times as references.
///
/// RecKernels owns threading: it runs OpenBLAS single-threaded inside its own workers (see
/// ``FlatIndex``), because OpenBLAS threads under our threads oversubscribe the cores (faiss's
/// single query and implicit's recommend both slow down that way). The first scoring call sets
/// OpenBLAS to one thread; ``withThreads(_:_:)`` changes that for one bare call.
public enum OpenBLAS {
    /// OpenBLAS's build configuration string (version, architecture, core it selected).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU core type OpenBLAS chose its kernels for.
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Threads OpenBLAS uses for one call.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS using `threads` threads, then restores single-threading.
    ///
    /// OpenBLAS's thread count is process-wide: do not score with ``FlatIndex`` concurrently.
    public static func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        openblas_set_num_threads(Int32(max(1, threads)))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// Sets OpenBLAS to one thread, once per process, before the first scoring call.
    static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// The bare product `scores = queries · itemsᵀ` (cblas_sgemm): a `queries.rows × items.rows`
    /// row-major matrix. The reference the benchmark times fused top-K against.
    ///
    /// - Precondition: equal dimensions; `scores.count == queries.rows * items.rows`.
    public static func multiply(_ queries: EmbeddingTable, transposed items: EmbeddingTable,
                                into scores: inout [Float]) {
        precondition(queries.dimensions == items.dimensions && scores.count == queries.rows * items.rows)
        queries.withUnsafeBufferPointer { q in
            items.withUnsafeBufferPointer { x in
                scores.withUnsafeMutableBufferPointer { c in
                    gemmNT(queries: q.baseAddress!, queryCount: queries.rows, items: x.baseAddress!,
                           itemCount: items.rows, dimensions: items.dimensions, scores: c.baseAddress!,
                           scoresStride: items.rows)
                }
            }
        }
    }

    /// The bare product `scores = items · query` (cblas_sgemv): one score per item.
    ///
    /// - Precondition: `query.count == items.dimensions`; `scores.count == items.rows`.
    public static func multiply(_ items: EmbeddingTable, vector query: [Float], into scores: inout [Float]) {
        precondition(query.count == items.dimensions && scores.count == items.rows)
        items.withUnsafeBufferPointer { x in
            scores.withUnsafeMutableBufferPointer { y in
                gemv(items: x.baseAddress!, itemCount: items.rows, dimensions: items.dimensions,
                     query: query, scores: y.baseAddress!)
            }
        }
    }

    // MARK: Internal calls

    /// C[i, j] = dot(query i, item j) for a tile; C row-major with `scoresStride` columns.
    static func gemmNT(queries: UnsafePointer<Float>, queryCount: Int, items: UnsafePointer<Float>,
                       itemCount: Int, dimensions: Int, scores: UnsafeMutablePointer<Float>,
                       scoresStride: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(queryCount), blasint(itemCount),
                    blasint(dimensions), 1, queries, blasint(dimensions), items, blasint(dimensions),
                    0, scores, blasint(scoresStride))
    }

    /// y[j] = dot(item j, query).
    static func gemv(items: UnsafePointer<Float>, itemCount: Int, dimensions: Int,
                     query: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(itemCount), blasint(dimensions), 1,
                    items, blasint(dimensions), query, 1, 0, scores, 1)
    }
}
