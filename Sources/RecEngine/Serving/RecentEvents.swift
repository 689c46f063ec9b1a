import Synchronization

/// Each user's most recent events, bounded per user and in users: the realtime path's state.
///
/// Feedback appends here; the engine folds a user's recent events into their next request and
/// leaves them out of its results. When more than ``maximumUsers`` users have events, the one
/// updated least recently is evicted (counted in ``evictedUsers``).
///
/// - Complexity: ``append(user:events:)`` and ``events(of:)`` are O(maximumPerUser) amortized.
public final class RecentEvents: Sendable {
    /// Events kept per user; older ones are dropped.
    public let maximumPerUser: Int
    /// Users kept; the least recently updated is evicted beyond it.
    public let maximumUsers: Int

    private struct State {
        var events: [String: (events: [Event], stamp: UInt64)] = [:]
        /// Update stamp → user, for finding the least recently updated user.
        var order: [UInt64: String] = [:]
        var oldest: UInt64 = 0
        var next: UInt64 = 0
        var evicted = 0
    }
    private let state = Mutex(State())

    /// Bounds of `maximumPerUser` events for each of at most `maximumUsers` users.
    public init(maximumPerUser: Int = 50, maximumUsers: Int = 100_000) {
        self.maximumPerUser = max(1, maximumPerUser)
        self.maximumUsers = max(1, maximumUsers)
    }

    /// Appends `events` (oldest first) to `user`'s history, keeping the latest
    /// ``maximumPerUser``. - Returns: the user's history after the change, oldest first.
    @discardableResult
    public func append(user: String, events: [Event]) -> [Event] {
        state.withLock { state in
            var history = state.events[user]?.events ?? []
            if let stamp = state.events[user]?.stamp { state.order[stamp] = nil }
            history.append(contentsOf: events)
            if history.count > maximumPerUser { history.removeFirst(history.count - maximumPerUser) }
            let stamp = state.next
            state.next += 1
            state.events[user] = (history, stamp)
            state.order[stamp] = user
            while state.events.count > maximumUsers {
                while state.order[state.oldest] == nil { state.oldest += 1 }
                let victim = state.order.removeValue(forKey: state.oldest)!
                state.events[victim] = nil
                state.evicted += 1
            }
            return history
        }
    }

    /// `user`'s recent events, oldest first; empty for a user without any.
    public func events(of user: String) -> [Event] {
        state.withLock { $0.events[user]?.events ?? [] }
    }

    /// Forgets `user`'s events.
    public func remove(user: String) {
        state.withLock { state in
            if let stamp = state.events.removeValue(forKey: user)?.stamp { state.order[stamp] = nil }
        }
    }

    /// Users evicted to stay within ``maximumUsers`` since creation.
    public var evictedUsers: Int { state.withLock { $0.evicted } }

    /// Users with recent events now.
    public var userCount: Int { state.withLock { $0.events.count } }
}
