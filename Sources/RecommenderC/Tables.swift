// Version, errors, build information, tables and exact indexes of include/recommender.h.
// Each function documents its contract in the header; these are the implementations.
import RecKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Version, errors, build information

/// Strings handed out by rec_get_build_info: made once, never freed (static for C).
private struct BuildStrings: @unchecked Sendable {
    let version: UnsafeMutablePointer<CChar>
    let simdName: UnsafeMutablePointer<CChar>
    let blas: UnsafeMutablePointer<CChar>
}

private let buildStrings = BuildStrings(version: strdup(libraryVersion)!, simdName: strdup(SIMDLevel.best.description)!,
                                        blas: strdup(OpenBLAS.configuration)!)

/// REC_ABI_VERSION of the library.
@_cdecl("rec_abi_version")
public func rec_abi_version() -> Int32 { abiVersion }

/// REC_OK when the caller's header matches this library.
@_cdecl("rec_check_abi")
public func rec_check_abi(_ expected: Int32) -> Int32 {
    call("rec_check_abi") {
        guard expected == abiVersion else {
            throw ABIError(.abiMismatch, "the program was compiled against ABI version \(expected), the library is version \(abiVersion)")
        }
    }
}

/// The calling thread's last error message.
@_cdecl("rec_last_error")
public func rec_last_error() -> UnsafePointer<CChar> { lastError() }

/// Fills a `rec_build_info` (layout: int32 abi_version; const char *version; int32 simd_level;
/// const char *simd_name; const char *blas; int32 cores — natural C alignment).
@_cdecl("rec_get_build_info")
public func rec_get_build_info(_ info: UnsafeMutableRawPointer?) -> Int32 {
    call("rec_get_build_info") {
        let info = try required(info, "info")
        let pointer = MemoryLayout<UnsafeRawPointer>.stride
        info.storeBytes(of: abiVersion, toByteOffset: 0, as: Int32.self)
        info.storeBytes(of: UnsafePointer(buildStrings.version), toByteOffset: pointer, as: UnsafePointer<CChar>.self)
        info.storeBytes(of: Int32(SIMDLevel.best.rawValue), toByteOffset: 2 * pointer, as: Int32.self)
        info.storeBytes(of: UnsafePointer(buildStrings.simdName), toByteOffset: 3 * pointer, as: UnsafePointer<CChar>.self)
        info.storeBytes(of: UnsafePointer(buildStrings.blas), toByteOffset: 4 * pointer, as: UnsafePointer<CChar>.self)
        info.storeBytes(of: Int32(FlatIndex.defaultThreads), toByteOffset: 5 * pointer, as: Int32.self)
    }
}

// MARK: Tables

/// Opens a model-file section (mapped) or a .npy file (read), by magic bytes.
@_cdecl("rec_table_open")
public func rec_table_open(_ path: UnsafePointer<CChar>?, _ section: UnsafePointer<CChar>?,
                           _ table: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_table_open") {
        let path = String(cString: try required(path, "path"))
        let out = try required(table, "table")
        let file = try MappedFile(path: path)
        let isNumPy = file.withUnsafeBytes { $0.count >= 6 && $0[0] == 0x93 && Array($0[1 ..< 6]) == Array("NUMPY".utf8) }
        let loaded: EmbeddingTable
        if isNumPy {
            loaded = try NumPyFile.read(path)
        } else {
            let name = section.map { String(cString: $0) } ?? EmbeddingTable.fileSectionName
            loaded = try ModelFile(contentsOf: path).table(name)
        }
        out.pointee = retained(TableHandle(loaded))
    }
}

/// Borrows the caller's buffer.
@_cdecl("rec_table_wrap")
public func rec_table_wrap(_ data: UnsafePointer<Float>?, _ rows: Int64, _ dimensions: Int64,
                           _ table: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_table_wrap") {
        let out = try required(table, "table")
        guard rows >= 0, rows <= Int64(EmbeddingTable.maximumRows) else {
            throw ABIError(.invalidArgument, "rows must be in 0...\(EmbeddingTable.maximumRows), got \(rows)")
        }
        guard dimensions >= 1, dimensions <= Int64(Int32.max) else {
            throw ABIError(.invalidArgument, "dimensions must be at least 1, got \(dimensions)")
        }
        if rows > 0 { _ = try required(data, "data") }
        let wrapped = try EmbeddingTable(unsafeBorrowing: UnsafeBufferPointer(start: data, count: Int(rows * dimensions)),
                                         rows: Int(rows), dimensions: Int(dimensions))
        out.pointee = retained(TableHandle(wrapped))
    }
}

@_cdecl("rec_table_shape")
public func rec_table_shape(_ table: OpaquePointer?, _ rows: UnsafeMutablePointer<Int64>?,
                            _ dimensions: UnsafeMutablePointer<Int64>?) -> Int32 {
    call("rec_table_shape") {
        let handle = try object(table, as: TableHandle.self, "table")
        rows?.pointee = Int64(handle.table.rows)
        dimensions?.pointee = Int64(handle.table.dimensions)
    }
}

@_cdecl("rec_table_data")
public func rec_table_data(_ table: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    call("rec_table_data") {
        let handle = try object(table, as: TableHandle.self, "table")
        let out = try required(data, "data")
        // The storage lives as long as the handle, which holds the table: the pointer outlives the closure.
        out.pointee = handle.table.withUnsafeBufferPointer { $0.baseAddress }
    }
}

@_cdecl("rec_table_free")
public func rec_table_free(_ table: OpaquePointer?) -> Int32 {
    release(table, as: TableHandle.self)
    return Status.ok.rawValue
}

// MARK: Indexes

@_cdecl("rec_index_create")
public func rec_index_create(_ items: OpaquePointer?, _ metric: Int32, _ index: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_index_create") {
        let table = try object(items, as: TableHandle.self, "items").table
        let out = try required(index, "index")
        let metrics: [SimilarityMetric] = [.innerProduct, .cosine, .squaredEuclidean]
        guard metric >= 0 && Int(metric) < metrics.count else {
            throw ABIError(.invalidArgument, "unknown metric \(metric): expected 0 (inner product), 1 (cosine) or 2 (squared Euclidean)")
        }
        out.pointee = retained(IndexHandle(try FlatIndex(items: table, metric: metrics[Int(metric)])))
    }
}

@_cdecl("rec_index_info")
public func rec_index_info(_ index: OpaquePointer?, _ items: UnsafeMutablePointer<Int64>?, _ dimensions: UnsafeMutablePointer<Int64>?,
                           _ metric: UnsafeMutablePointer<Int32>?) -> Int32 {
    call("rec_index_info") {
        let flat = try object(index, as: IndexHandle.self, "index").index
        items?.pointee = Int64(flat.items.rows)
        dimensions?.pointee = Int64(flat.items.dimensions)
        metric?.pointee = switch flat.metric {
        case .innerProduct: 0
        case .cosine: 1
        case .squaredEuclidean: 2
        }
    }
}

/// The four pointers of a `rec_filter`, read during one call.
struct SearchFilter {
    var exclusionOffsets: UnsafePointer<Int64>?
    var exclusionIDs: UnsafePointer<Int64>?
    var allowed: UnsafePointer<UInt64>?
    var denied: UnsafePointer<UInt64>?

    init(_ raw: UnsafeRawPointer?) {
        guard let raw else { return }
        let fields = raw.assumingMemoryBound(to: UnsafeRawPointer?.self)
        exclusionOffsets = fields[0]?.assumingMemoryBound(to: Int64.self)
        exclusionIDs = fields[1]?.assumingMemoryBound(to: Int64.self)
        allowed = fields[2]?.assumingMemoryBound(to: UInt64.self)
        denied = fields[3]?.assumingMemoryBound(to: UInt64.self)
    }

    /// The catalog-wide allow/deny filter, or nil.
    func itemFilter(itemCount: Int) throws -> ItemFilter? {
        if allowed == nil && denied == nil { return nil }
        let words = (itemCount + 63) / 64
        return ItemFilter(allowed: try allowed.map { try ItemBitset(capacity: itemCount, words: UnsafeBufferPointer(start: $0, count: words)) },
                          denied: try denied.map { try ItemBitset(capacity: itemCount, words: UnsafeBufferPointer(start: $0, count: words)) })
    }

    /// Per-query exclusions of a batch of `queryCount`, checked against the catalog, or nil.
    func exclusions(queryCount: Int, itemCount: Int) throws -> ExcludedItems? {
        switch (exclusionOffsets, exclusionIDs) {
        case (nil, nil): return nil
        case (nil, _): throw ABIError(.nullArgument, "filter->exclusion_offsets is NULL but filter->exclusion_ids is not")
        case (_, nil): throw ABIError(.nullArgument, "filter->exclusion_ids is NULL but filter->exclusion_offsets is not")
        case let (offsets?, ids?):
            guard offsets[0] == 0 else {
                throw ABIError(.invalidArgument, "filter->exclusion_offsets[0] must be 0, got \(offsets[0])")
            }
            var lists: [[Int]] = []
            lists.reserveCapacity(queryCount)
            for q in 0 ..< queryCount {
                let (start, end) = (offsets[q], offsets[q + 1])
                guard end >= start else {
                    throw ABIError(.invalidArgument,
                                   "filter->exclusion_offsets must not decrease: offsets[\(q + 1)] = \(end) < offsets[\(q)] = \(start)")
                }
                var list: [Int] = []
                list.reserveCapacity(Int(end - start))
                for e in Int(start) ..< Int(end) {
                    let id = ids[e]
                    guard id >= 0 && id < Int64(itemCount) else {
                        throw ABIError(.invalidArgument,
                                       "filter->exclusion_ids[\(e)] = \(id) (query \(q)) is outside the catalog (0..<\(itemCount))")
                    }
                    list.append(Int(id))
                }
                lists.append(list)
            }
            return try ExcludedItems(lists)
        }
    }
}

/// Checks the common arguments of a search; returns the worker thread count.
private func checkSearch(_ flat: FlatIndex, dimensions: Int64, k: Int32, threads: Int32) throws -> Int {
    guard k >= 1 else { throw ABIError(.invalidArgument, "k must be at least 1, got \(k)") }
    guard threads >= 0 else { throw ABIError(.invalidArgument, "threads must be 0 (one per core) or more, got \(threads)") }
    guard dimensions == Int64(flat.items.dimensions) else {
        throw ABIError(.dimensionMismatch, "the queries have \(dimensions) dimensions, the catalog \(flat.items.dimensions)")
    }
    return threads == 0 ? FlatIndex.defaultThreads : Int(threads)
}

@_cdecl("rec_index_search")
public func rec_index_search(_ index: OpaquePointer?, _ queries: UnsafePointer<Float>?, _ queryCount: Int64, _ dimensions: Int64,
                             _ k: Int32, _ filter: UnsafeRawPointer?, _ threads: Int32, _ ids: UnsafeMutablePointer<Int64>?,
                             _ scores: UnsafeMutablePointer<Float>?, _ counts: UnsafeMutablePointer<Int32>?) -> Int32 {
    call("rec_index_search") {
        let flat = try object(index, as: IndexHandle.self, "index").index
        let workers = try checkSearch(flat, dimensions: dimensions, k: k, threads: threads)
        guard queryCount >= 0, queryCount <= Int64(EmbeddingTable.maximumRows) else {
            throw ABIError(.invalidArgument, "query_count must be in 0...\(EmbeddingTable.maximumRows), got \(queryCount)")
        }
        let (ids, scores) = (try required(ids, "ids"), try required(scores, "scores"))
        if queryCount == 0 { return }
        let queries = try required(queries, "queries")
        let n = Int(queryCount), d = Int(dimensions), k = Int(k)
        let table = try EmbeddingTable(unsafeBorrowing: UnsafeBufferPointer(start: queries, count: n * d), rows: n, dimensions: d)
        let filter = SearchFilter(filter)
        let results = try flat.search(table, k: k, excluding: try filter.exclusions(queryCount: n, itemCount: flat.items.rows),
                                      filter: try filter.itemFilter(itemCount: flat.items.rows), threads: workers)
        results.ids.withUnsafeBufferPointer { found in
            for e in 0 ..< n * k { ids[e] = Int64(found[e]) }
        }
        results.scores.withUnsafeBufferPointer { found in
            UnsafeMutableRawPointer(scores).copyMemory(from: found.baseAddress!, byteCount: n * k * MemoryLayout<Float>.stride)
        }
        if let counts {
            for q in 0 ..< n { counts[q] = results.counts[q] }
        }
    }
}

@_cdecl("rec_index_search_one")
public func rec_index_search_one(_ index: OpaquePointer?, _ query: UnsafePointer<Float>?, _ dimensions: Int64, _ k: Int32,
                                 _ excluded: UnsafePointer<Int64>?, _ excludedCount: Int64, _ filter: UnsafeRawPointer?,
                                 _ threads: Int32, _ ids: UnsafeMutablePointer<Int64>?, _ scores: UnsafeMutablePointer<Float>?,
                                 _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    call("rec_index_search_one") {
        let flat = try object(index, as: IndexHandle.self, "index").index
        let workers = try checkSearch(flat, dimensions: dimensions, k: k, threads: threads)
        let query = try required(query, "query")
        let (ids, scores) = (try required(ids, "ids"), try required(scores, "scores"))
        guard excludedCount >= 0 else { throw ABIError(.invalidArgument, "excluded_count must not be negative, got \(excludedCount)") }
        var filter = SearchFilter(filter)
        guard filter.exclusionOffsets == nil && filter.exclusionIDs == nil else {
            throw ABIError(.invalidArgument, "filter->exclusion_offsets/ids must be NULL for one query: pass excluded instead")
        }
        let offsets: [Int64] = [0, excludedCount]
        if excludedCount > 0 { filter.exclusionIDs = try required(excluded, "excluded") }
        let d = Int(dimensions)
        let table = try EmbeddingTable(unsafeBorrowing: UnsafeBufferPointer(start: query, count: d), rows: 1, dimensions: d)
        let results = try offsets.withUnsafeBufferPointer { offsetBuffer in
            if excludedCount > 0 { filter.exclusionOffsets = offsetBuffer.baseAddress }
            return try flat.search(table, k: Int(k), excluding: try filter.exclusions(queryCount: 1, itemCount: flat.items.rows),
                                   filter: try filter.itemFilter(itemCount: flat.items.rows), threads: workers)
        }
        write(results[0].map { ($0.id, $0.score) }, k: Int(k), ids: ids, scores: scores)
        count?.pointee = results.counts[0]
    }
}

@_cdecl("rec_index_free")
public func rec_index_free(_ index: OpaquePointer?) -> Int32 {
    release(index, as: IndexHandle.self)
    return Status.ok.rawValue
}
