import RecEngine
import Synchronization

/// Each user's most recent feedback events, in memory and bounded: at most `maximumPerUser`
/// events per user (oldest dropped first) and `maximumUsers` users (the least recently updated
/// user evicted first, counted in ``evictedUsers``).
///
/// The next recommendation for a user folds these events in and leaves their items out — the
/// static mode's realtime path for applications without a stream.
///
/// - Complexity: ``append(user:events:)`` and ``events(of:)`` are O(events per user) amortized,
///   under one lock held for that long.
final class FeedbackHistory: Sendable {
    private struct Entry {
        var events: [Event]
        var stamp: UInt64
    }
    private struct State {
        var users: [String: Entry] = [:]
        /// Update stamp → user, oldest first: the eviction order.
        var order: [UInt64: String] = [:]
        var oldest: UInt64 = 0
        var clock: UInt64 = 0
        var evicted = 0
    }
    private let state = Mutex(State())
    let maximumPerUser: Int
    let maximumUsers: Int

    init(maximumPerUser: Int, maximumUsers: Int) {
        self.maximumPerUser = max(1, maximumPerUser)
        self.maximumUsers = max(1, maximumUsers)
    }

    /// Appends `events` to `user`'s history and returns the history after, oldest first.
    @discardableResult
    func append(user: String, events: [Event]) -> [Event] {
        state.withLock { state in
            var entry = state.users[user] ?? Entry(events: [], stamp: 0)
            if state.users[user] != nil { state.order[entry.stamp] = nil }
            entry.events.append(contentsOf: events)
            if entry.events.count > maximumPerUser { entry.events.removeFirst(entry.events.count - maximumPerUser) }
            state.clock += 1
            entry.stamp = state.clock
            state.order[entry.stamp] = user
            state.users[user] = entry
            while state.users.count > maximumUsers {
                while state.order[state.oldest] == nil { state.oldest += 1 }
                let victim = state.order.removeValue(forKey: state.oldest)!
                state.users[victim] = nil
                state.evicted += 1
            }
            return entry.events
        }
    }

    /// `user`'s recent events, oldest first (empty for a user never seen or evicted).
    func events(of user: String) -> [Event] { state.withLock { $0.users[user]?.events ?? [] } }

    /// Users evicted to stay within ``maximumUsers`` since start.
    var evictedUsers: Int { state.withLock { $0.evicted } }

    /// Users with a history now.
    var userCount: Int { state.withLock { $0.users.count } }

    /// Events held now, over every user.
    var eventCount: Int { state.withLock { $0.users.values.reduce(0) { $0 + $1.events.count } } }
}
