// Factor models and text indexes of include/recommender.h.
import RecKernels
import RecModels
import RecText

// MARK: Factor models

@_cdecl("rec_model_open")
public func rec_model_open(_ path: UnsafePointer<CChar>?, _ model: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_model_open") {
        let path = String(cString: try required(path, "path"))
        let out = try required(model, "model")
        out.pointee = retained(ModelHandle(try FactorModel(contentsOf: path)))
    }
}

@_cdecl("rec_model_shape")
public func rec_model_shape(_ model: OpaquePointer?, _ users: UnsafeMutablePointer<Int64>?, _ items: UnsafeMutablePointer<Int64>?,
                            _ dimensions: UnsafeMutablePointer<Int64>?) -> Int32 {
    call("rec_model_shape") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        users?.pointee = Int64(factors.userFactors.rows)
        items?.pointee = Int64(factors.itemFactors.rows)
        dimensions?.pointee = Int64(factors.itemFactors.dimensions)
    }
}

@_cdecl("rec_model_item_factors")
public func rec_model_item_factors(_ model: OpaquePointer?, _ table: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_model_item_factors") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        try required(table, "table").pointee = retained(TableHandle(factors.itemFactors))
    }
}

@_cdecl("rec_model_user_factors")
public func rec_model_user_factors(_ model: OpaquePointer?, _ table: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_model_user_factors") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        try required(table, "table").pointee = retained(TableHandle(factors.userFactors))
    }
}

@_cdecl("rec_model_user_index")
public func rec_model_user_index(_ model: OpaquePointer?, _ id: UnsafePointer<CChar>?, _ index: UnsafeMutablePointer<Int64>?) -> Int32 {
    call("rec_model_user_index") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        let id = String(cString: try required(id, "id"))
        let out = try required(index, "index")
        out.pointee = Int64(try factors.catalog.user(id))
    }
}

@_cdecl("rec_model_item_index")
public func rec_model_item_index(_ model: OpaquePointer?, _ id: UnsafePointer<CChar>?, _ index: UnsafeMutablePointer<Int64>?) -> Int32 {
    call("rec_model_item_index") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        let id = String(cString: try required(id, "id"))
        let out = try required(index, "index")
        out.pointee = Int64(try factors.catalog.item(id))
    }
}

@_cdecl("rec_model_item_id")
public func rec_model_item_id(_ model: OpaquePointer?, _ index: Int64, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                              _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    call("rec_model_item_id") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        let ids = factors.catalog.items.ids
        guard index >= 0 && index < Int64(ids.count) else {
            throw ABIError(.invalidArgument, "item index \(index) is outside the catalog (0..<\(ids.count))")
        }
        try copyString(ids[Int(index)], buffer, capacity, length, "buffer")
    }
}

@_cdecl("rec_model_fold_in")
public func rec_model_fold_in(_ model: OpaquePointer?, _ items: UnsafePointer<Int64>?, _ weights: UnsafePointer<Float>?, _ count: Int64,
                              _ vector: UnsafeMutablePointer<Float>?, _ dimensions: Int64) -> Int32 {
    call("rec_model_fold_in") {
        let factors = try object(model, as: ModelHandle.self, "model").model
        let vector = try required(vector, "vector")
        guard dimensions == Int64(factors.itemFactors.dimensions) else {
            throw ABIError(.dimensionMismatch, "vector holds \(dimensions) floats, the model's vectors have \(factors.itemFactors.dimensions)")
        }
        guard count >= 1 else { throw ABIError(.invalidArgument, "the history is empty (count = \(count)): there is nothing to fold in") }
        let items = try required(items, "items")
        let itemCount = factors.itemFactors.rows
        var history: [Int] = []
        history.reserveCapacity(Int(count))
        for n in 0 ..< Int(count) {
            guard items[n] >= 0 && items[n] < Int64(itemCount) else {
                throw ABIError(.invalidArgument, "items[\(n)] = \(items[n]) is outside the catalog (0..<\(itemCount))")
            }
            history.append(Int(items[n]))
        }
        let strengths = weights.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? [Float](repeating: 1, count: Int(count))
        let folded = try factors.foldIn(history: history, weights: strengths)
        for f in 0 ..< folded.count { vector[f] = folded[f] }
    }
}

@_cdecl("rec_model_free")
public func rec_model_free(_ model: OpaquePointer?) -> Int32 {
    release(model, as: ModelHandle.self)
    return Status.ok.rawValue
}

// MARK: Text indexes

@_cdecl("rec_text_open")
public func rec_text_open(_ path: UnsafePointer<CChar>?, _ index: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    call("rec_text_open") {
        let path = String(cString: try required(path, "path"))
        let out = try required(index, "index")
        out.pointee = retained(TextHandle(try TextIndex(contentsOf: path)))
    }
}

@_cdecl("rec_text_count")
public func rec_text_count(_ index: OpaquePointer?, _ documents: UnsafeMutablePointer<Int64>?) -> Int32 {
    call("rec_text_count") {
        let text = try object(index, as: TextHandle.self, "index").index
        try required(documents, "documents").pointee = Int64(text.ids.count)
    }
}

/// The representation a `rec_text_representation` names.
private func representation(_ raw: Int32) throws -> TextRepresentation {
    switch raw {
    case 0: .tfidf
    case 1: .lsi
    case 2: .word2vec
    default: throw ABIError(.invalidArgument, "unknown representation \(raw): expected 0 (TF-IDF), 1 (LSI) or 2 (word2vec)")
    }
}

/// Shared body of rec_text_query and rec_text_similar.
private func textSearch(_ function: String, _ index: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ keyName: String, _ k: Int32,
                        _ using: Int32, _ rows: UnsafeMutablePointer<Int64>?, _ scores: UnsafeMutablePointer<Float>?,
                        _ count: UnsafeMutablePointer<Int32>?,
                        _ search: (TextIndex, String, Int, TextRepresentation) throws -> [TextMatch]) -> Int32 {
    call(function) {
        let text = try object(index, as: TextHandle.self, "index").index
        let key = String(cString: try required(key, keyName))
        guard k >= 1 else { throw ABIError(.invalidArgument, "k must be at least 1, got \(k)") }
        let (rows, scores) = (try required(rows, "rows"), try required(scores, "scores"))
        let matches = try search(text, key, Int(k), try representation(using))
        write(matches.map { ($0.row, $0.score) }, k: Int(k), ids: rows, scores: scores)
        count?.pointee = Int32(matches.count)
    }
}

@_cdecl("rec_text_query")
public func rec_text_query(_ index: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ k: Int32, _ using: Int32,
                           _ rows: UnsafeMutablePointer<Int64>?, _ scores: UnsafeMutablePointer<Float>?,
                           _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    textSearch("rec_text_query", index, text, "text", k, using, rows, scores, count) { try $0.query($1, k: $2, using: $3) }
}

@_cdecl("rec_text_similar")
public func rec_text_similar(_ index: OpaquePointer?, _ id: UnsafePointer<CChar>?, _ k: Int32, _ using: Int32,
                             _ rows: UnsafeMutablePointer<Int64>?, _ scores: UnsafeMutablePointer<Float>?,
                             _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    textSearch("rec_text_similar", index, id, "id", k, using, rows, scores, count) { try $0.similar(toDocument: $1, k: $2, using: $3) }
}

@_cdecl("rec_text_document")
public func rec_text_document(_ index: OpaquePointer?, _ row: Int64, _ id: UnsafeMutablePointer<CChar>?, _ idCapacity: Int,
                              _ idLength: UnsafeMutablePointer<Int>?, _ label: UnsafeMutablePointer<CChar>?, _ labelCapacity: Int,
                              _ labelLength: UnsafeMutablePointer<Int>?) -> Int32 {
    call("rec_text_document") {
        let text = try object(index, as: TextHandle.self, "index").index
        guard row >= 0 && row < Int64(text.ids.count) else {
            throw ABIError(.invalidArgument, "row \(row) is outside the index (0..<\(text.ids.count))")
        }
        // Both lengths first, so a caller sizing a retry learns both from one failure.
        idLength?.pointee = text.ids[Int(row)].utf8.count
        labelLength?.pointee = text.labels[Int(row)].utf8.count
        try copyString(text.ids[Int(row)], id, idCapacity, idLength, "id")
        try copyString(text.labels[Int(row)], label, labelCapacity, labelLength, "label")
    }
}

@_cdecl("rec_text_free")
public func rec_text_free(_ index: OpaquePointer?) -> Int32 {
    release(index, as: TextHandle.self)
    return Status.ok.rawValue
}
