import FoundationEssentials
import RecKernels

/// The JSON metadata of a text-index model file.
struct TextIndexMetadata: Codable {
    static let kind = "text-index"
    static let version = 1
    var kind = TextIndexMetadata.kind
    var version = TextIndexMetadata.version
    var tfidf: TfidfOptions
    var fittedDocuments: Int
    var lsiTopics: Int?
    var word2vec: SkipGramOptions?
}

extension TextIndex {
    /// Saves the index — options, vocabulary (a ``TermTable``: terms and their hash slots, so
    /// that opening searches them in place), idf, ids, labels, the weight matrix and any LSI
    /// and word2vec parts — as one model file (atomically; see ``ModelFileWriter``). Strings are
    /// stored as UTF-8 bytes with int64 offsets; the metadata is JSON with kind "text-index".
    ///
    /// - Throws: ``SystemCallError``, ``MatrixError``.
    /// - Complexity: O(file size).
    public func save(to path: String) throws {
        var writer = ModelFileWriter()
        let metadata = TextIndexMetadata(tfidf: tfidf.options, fittedDocuments: tfidf.documentCount,
                                         lsiTopics: lsi?.singularValues.count, word2vec: word2vec?.words.options)
        writer.metadata = Array(try JSONEncoder().encode(metadata))
        try writer.add(tfidf.terms, named: "vocabulary")
        try writer.add(column(tfidf.idf), named: "idf")
        try writer.addStrings(ids, named: "ids")
        try writer.addStrings(labels, named: "labels")
        try writer.add(weights.rowOffsets.map(Int64.init), named: "weights_offsets")
        try writer.add(weights.columnIndices, named: "weights_columns")
        try writer.add(column(weights.values), named: "weights_values")
        if let lsi {
            try writer.add(column(lsi.singularValues), named: "lsi_singular_values")
            try writer.add(lsi.projection, named: "lsi_projection")
            try writer.add(lsi.documentVectors, named: "lsi_documents")
        }
        if let word2vec {
            try writer.addStrings(word2vec.words.vocabulary, named: "w2v_vocabulary")
            try writer.add(word2vec.words.counts.map(Int64.init), named: "w2v_counts")
            try writer.add(word2vec.words.vectors, named: "w2v_vectors")
            try writer.add(word2vec.documentVectors, named: "w2v_documents")
        }
        try writer.write(to: path)
    }

    /// Opens an index saved with ``save(to:)``; the vocabulary and the dense parts are used in
    /// place from the mapping (files written before the vocabulary's hash slots were stored get
    /// them built at open).
    ///
    /// - Throws: ``ModelFileError`` (corrupt, truncated, missing section),
    ///   ``TextModelError/mismatchedModelFile(path:reason:)`` for a file of another kind or
    ///   whose parts disagree.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata: TextIndexMetadata
        do { metadata = try JSONDecoder().decode(TextIndexMetadata.self, from: Data(file.metadata)) } catch {
            throw TextModelError.mismatchedModelFile(path: path, reason: "its metadata is not a text index's")
        }
        guard metadata.kind == TextIndexMetadata.kind, metadata.version == TextIndexMetadata.version else {
            throw TextModelError.mismatchedModelFile(path: path, reason: "kind \(metadata.kind) version \(metadata.version), expected \(TextIndexMetadata.kind) \(TextIndexMetadata.version)")
        }
        // The optional parts are declared by the metadata: a part whose sections are present but
        // whose key is missing (a damaged key name) must be refused, not silently dropped.
        let sectionNames = file.sections.map(\.name)
        for (part, declared, prefix) in [("LSI", metadata.lsiTopics != nil, "lsi_"), ("word2vec", metadata.word2vec != nil, "w2v_")]
        where !declared && sectionNames.contains(where: { $0.hasPrefix(prefix) }) {
            throw TextModelError.mismatchedModelFile(path: path, reason: "it has \(part) sections but its metadata declares no \(part) part")
        }
        do {
            let terms = try file.termTable("vocabulary")
            let tfidf = try TfidfModel(options: metadata.tfidf, terms: terms, idf: try file.column("idf"),
                                       documentCount: metadata.fittedDocuments)
            let ids = try file.strings("ids")
            let weights = try SparseMatrix(rows: ids.count, columns: terms.count,
                                           rowOffsets: try file.int64s("weights_offsets").map(Int.init),
                                           columnIndices: try file.int32s("weights_columns"), values: try file.column("weights_values"))
            let lsi = try metadata.lsiTopics.map { topics in
                let singularValues = try file.column("lsi_singular_values")
                guard singularValues.count == topics else {
                    throw TextModelError.mismatchedModelFile(path: path, reason: "the metadata says \(topics) LSI topics, the file holds \(singularValues.count)")
                }
                return try LatentSemanticSpace(singularValues: singularValues,
                                               projection: try file.table("lsi_projection"), documentVectors: try file.table("lsi_documents"))
            }
            let word2vec = try metadata.word2vec.map { options in
                let words = try Word2Vec(vocabulary: try file.strings("w2v_vocabulary"), counts: try file.int64s("w2v_counts").map(Int.init),
                                         vectors: try file.table("w2v_vectors"), options: options)
                return try DocumentEmbeddings(words: words, tfidf: tfidf, documentVectors: try file.table("w2v_documents"))
            }
            try self.init(ids: ids, labels: try file.strings("labels"), tfidf: tfidf, weights: weights, lsi: lsi, word2vec: word2vec)
        } catch let TextModelError.mismatchedModelFile(path, reason) {
            throw TextModelError.mismatchedModelFile(path: path, reason: reason)
        } catch let error as TextModelError {
            throw TextModelError.mismatchedModelFile(path: path, reason: error.description)
        } catch let error as MatrixError {
            throw TextModelError.mismatchedModelFile(path: path, reason: "\(error)")
        }
    }
}

/// A one-column table of `values` (how vectors are stored).
private func column(_ values: [Float]) throws -> EmbeddingTable {
    try EmbeddingTable(rows: values.count, dimensions: 1, values: values)
}

extension ModelFileWriter {
    /// Adds `strings` as two sections: `<name>_bytes` (UTF-8, back to back) and
    /// `<name>_offsets` (int64, count + 1 entries).
    mutating func addStrings(_ strings: [String], named name: String) throws {
        var bytes: [UInt8] = [], offsets: [Int64] = [0]
        for string in strings {
            bytes.append(contentsOf: string.utf8)
            offsets.append(Int64(bytes.count))
        }
        try add(bytes: bytes, named: name + "_bytes")
        try add(offsets, named: name + "_offsets")
    }
}

extension ModelFile {
    /// Strings stored by `addStrings(_:named:)`.
    func strings(_ name: String) throws -> [String] {
        let bytes = try self.bytes(name + "_bytes"), offsets = try int64s(name + "_offsets")
        try offsets.withUnsafeBufferPointer { try checkOffsets($0, cover: bytes.count, section: name + "_offsets") }
        return (0 ..< offsets.count - 1).map { String(decoding: bytes[Int(offsets[$0]) ..< Int(offsets[$0 + 1])], as: UTF8.self) }
    }

    /// A float vector stored as a one-column table.
    func column(_ name: String) throws -> [Float] {
        try table(name).withUnsafeBufferPointer { Array($0) }
    }
}
