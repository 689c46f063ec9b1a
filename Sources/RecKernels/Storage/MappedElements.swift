/// A read-only array of plain values that is either a section of a mapped model file, read in
/// place (no copy, no parsing), or a heap copy of an array. Immutable, so `Sendable`.
///
/// It is what lets a model open in O(sections) rather than O(size): lookups index straight into
/// the file's pages. Subscripting is bounds-checked and O(1).
package struct MappedElements<Element: BitwiseCopyable>: RandomAccessCollection, @unchecked Sendable {
    /// Keeps the memory alive: the ``MappedFile`` or the heap copy.
    @usableFromInline let owner: AnyObject
    @usableFromInline let base: UnsafePointer<Element>
    package let count: Int
    /// The file this reads in place; nil for a heap copy.
    package let mapping: MappedFile?

    /// A heap copy of `elements`.
    package init(_ elements: [Element]) {
        let copy = HeapElements(elements)
        self.owner = copy
        self.base = UnsafePointer(copy.base)
        self.count = elements.count
        self.mapping = nil
    }

    /// `count` elements of `mapping` from `byteOffset` (aligned for `Element`).
    init(mapping: MappedFile, byteOffset: Int, count: Int) {
        precondition(byteOffset % MemoryLayout<Element>.alignment == 0
            && byteOffset + count * MemoryLayout<Element>.stride <= mapping.length)
        self.owner = mapping
        self.base = (mapping.base + byteOffset).assumingMemoryBound(to: Element.self)
        self.count = count
        self.mapping = mapping
    }

    package typealias Indices = Range<Int>

    @inlinable package var startIndex: Int { 0 }
    @inlinable package var endIndex: Int { count }
    @inlinable package var indices: Range<Int> { 0 ..< count }
    @inlinable package func index(after i: Int) -> Int { i + 1 }
    @inlinable package func index(before i: Int) -> Int { i - 1 }

    @inlinable package subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "index \(position) outside 0..<\(count)")
        return base[position]
    }

    /// Calls `body` with the elements; the buffer is valid only inside `body`.
    @inlinable package func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(UnsafeBufferPointer(start: base, count: count)) }
    }
}

/// The heap storage of a ``MappedElements`` copy.
private final class HeapElements<Element: BitwiseCopyable> {
    let base: UnsafeMutablePointer<Element>

    init(_ elements: [Element]) {
        base = .allocate(capacity: max(1, elements.count))
        _ = UnsafeMutableBufferPointer(start: base, count: elements.count).initialize(from: elements)
    }

    deinit { base.deallocate() }
}

extension ModelFile {
    /// Section `name` read in place from the mapping (no copy), as elements of `type`.
    ///
    /// - Throws: ``ModelFileError/missingSection(path:section:)``,
    ///   ``ModelFileError/wrongSectionType(path:section:expected:actual:)``.
    package func mappedElements<T: BitwiseCopyable>(_ name: String, type: ModelFileElementType,
                                                    as _: T.Type = T.self) throws -> MappedElements<T> {
        guard let section = section(name) else { throw ModelFileError.missingSection(path: path, section: name) }
        guard section.elementType == type else {
            throw ModelFileError.wrongSectionType(path: path, section: name, expected: type, actual: section.elementType)
        }
        precondition(type.size == MemoryLayout<T>.stride, "\(T.self) is not a \(type)")
        return MappedElements(mapping: mapping, byteOffset: section.offset, count: section.rows * section.columns)
    }
}
