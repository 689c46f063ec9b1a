import FoundationEssentials
import RecKernels
import RecModels
import RecText

/// The model kinds the store holds, how to open each, and how to read a file's kind.
enum StoredKinds {
    /// The kind string of ``TextIndex`` files (RecText keeps its constant internal).
    static let textIndex = "text-index"

    /// Opens a file of each kind; every opener verifies all checksums and memory-maps the file.
    private static let openers: [String: @Sendable (String) throws -> LoadedModel] = {
        let factorModel: @Sendable (String) throws -> LoadedModel = { .recommender(try FactorModel(contentsOf: $0)) }
        return [
            "als": factorModel, "als-explicit": factorModel, "bpr": factorModel, "biased-mf": factorModel,
            "bpmf": factorModel,
            "item-knn": { .recommender(try ItemKNNModel(contentsOf: $0)) },
            "ease": { .recommender(try EASEModel(contentsOf: $0)) },
            "rp3beta": { .recommender(try RP3betaModel(contentsOf: $0)) },
            "popularity": { .recommender(try PopularityModel(contentsOf: $0)) },
            textIndex: { .text(try TextIndex(contentsOf: $0)) },
        ]
    }()

    /// Every kind the store loads, sorted.
    static var all: [String] { openers.keys.sorted() }

    /// What the store records about a model file.
    struct Description {
        var kind: String
        var metadata: ModelMetadata?
        var bytes: Int
    }

    /// Only the field every model file's JSON metadata shares.
    private struct KindField: Decodable {
        var kind: String
    }

    /// Checks `path` (all checksums with `.full`) and reads its kind and metadata.
    ///
    /// - Throws: ``ModelStoreError/corrupt(path:reason:)``, ``ModelStoreError/unsupportedKind(path:kind:)``,
    ///   ``ModelStoreError/fileSystem(operation:path:reason:)``.
    /// - Complexity: O(file size) with `.full`, O(sections) with `.structure`.
    static func describe(_ path: String, verification: ModelFileVerification = .full) throws -> Description {
        try translatingErrors(path: path) {
            let file = try ModelFile(contentsOf: path, verification: verification)
            let json = Data(file.metadata)
            guard let kind = try? JSONDecoder().decode(KindField.self, from: json).kind else {
                throw ModelStoreError.corrupt(path: path, reason: "the metadata is not JSON naming a model kind")
            }
            guard openers[kind] != nil else { throw ModelStoreError.unsupportedKind(path: path, kind: kind) }
            var metadata: ModelMetadata?
            if kind != textIndex {
                do { metadata = try JSONDecoder().decode(ModelMetadata.self, from: json) } catch {
                    throw ModelStoreError.corrupt(path: path, reason: "the '\(kind)' metadata does not decode: \(error)")
                }
            }
            return Description(kind: kind, metadata: metadata, bytes: try StoreFileSystem.fileSize(path))
        }
    }

    /// Opens `path` as its concrete model type, verifying every checksum.
    ///
    /// The kind is read from the file itself rather than trusted from the state, so a file
    /// replaced behind the store's back is still opened (or refused) for what it is.
    static func open(_ path: String) throws -> LoadedModel {
        let kind = try describe(path, verification: .structure).kind
        return try translatingErrors(path: path) { try openers[kind]!(path) }
    }

    /// Runs `body`, turning the file-format and model errors it throws into ``ModelStoreError``s
    /// that name `path` once.
    static func translatingErrors<T>(path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as ModelStoreError {
            throw error
        } catch let error as SystemCallError {
            throw ModelStoreError.fileSystem(operation: error.call, path: error.path, reason: error.reason)
        } catch {
            let reason = "\(error)"
            let prefix = "\(path): "
            throw ModelStoreError.corrupt(path: path, reason: reason.hasPrefix(prefix) ? String(reason.dropFirst(prefix.count)) : reason)
        }
    }
}
