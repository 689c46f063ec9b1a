import Foundation

/// `value` with `decimals` digits after the point.
func fixed(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

/// Seconds in a duration.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Seconds since `start`.
func elapsed(since start: ContinuousClock.Instant) -> Double { seconds(ContinuousClock.now - start) }
