/// The micro-batches whose results were produced but not all acknowledged yet, in the order
/// they were produced, and which offsets become safe to commit as acknowledgements arrive.
///
/// Acknowledgements may come out of order (results go to several partitions); an offset
/// becomes committable only when its batch and every earlier batch are acknowledged, so a
/// commit never covers an event whose result could still be lost. O(1) amortized per batch.
public struct AcknowledgementTracker: Sendable {
    /// A batch in flight: the highest offset per partition it answers, and its event count.
    public struct Batch: Sendable, Equatable {
        /// The tag its messages were produced with.
        public var tag: UInt64
        /// Highest offset answered per partition.
        public var offsets: [Int32: Int64]
        /// Events it answers.
        public var events: Int
        /// When its messages were handed to the producer (seconds since 1970).
        public var produced: Double
        /// When the broker acknowledged the last of them; nil while not.
        public var acknowledged: Double?
    }

    private var batches: [Batch] = []
    private var head = 0
    private var nextTag: UInt64 = 1

    /// Nothing in flight.
    public init() {}

    /// Whether every batch added was retired.
    public var isEmpty: Bool { head == batches.count }

    /// Batches not yet retired.
    public var count: Int { batches.count - head }

    /// Registers a batch about to be produced; returns the tag (≥ 1) to produce its messages with.
    public mutating func add(offsets: [Int32: Int64], events: Int, produced: Double) -> UInt64 {
        let tag = nextTag
        nextTag += 1
        batches.append(Batch(tag: tag, offsets: offsets, events: events, produced: produced, acknowledged: nil))
        return tag
    }

    /// Records when `tag`'s messages were handed to the producer, when that was after ``add(offsets:events:produced:)``
    /// (the batch was scored on another thread). Unknown tags are ignored.
    public mutating func produced(_ tag: UInt64, at time: Double) {
        guard let index = index(of: tag) else { return }
        batches[index].produced = time
    }

    private func index(of tag: UInt64) -> Int? {
        // Tags increase along the array: find the batch by its distance from the head.
        guard !isEmpty, tag >= batches[head].tag else { return nil }
        let index = head + Int(tag - batches[head].tag)
        guard index < batches.count, batches[index].tag == tag else { return nil }
        return index
    }

    /// Records that every message of `tag` was acknowledged at `time`. Unknown tags are ignored.
    public mutating func acknowledge(_ tag: UInt64, at time: Double) {
        guard let index = index(of: tag) else { return }
        batches[index].acknowledged = time
    }

    /// Removes and returns the acknowledged batches at the front, oldest first: the ones whose
    /// offsets may now be committed.
    public mutating func retire() -> [Batch] {
        var retired: [Batch] = []
        while head < batches.count, batches[head].acknowledged != nil {
            retired.append(batches[head])
            head += 1
        }
        if head > 64 && head * 2 > batches.count {
            batches.removeFirst(head)
            head = 0
        }
        return retired
    }

    /// Forgets `partitions`' offsets in the batches in flight (they were given up in a
    /// rebalance: their next owner processes those events again, and this process must not
    /// commit for them).
    public mutating func forget(partitions: Set<Int32>) {
        for index in head ..< batches.count {
            for partition in partitions { batches[index].offsets[partition] = nil }
        }
    }
}
