namespace Packet.Agent.TestSupport;

/// <summary>
/// A clock on which waiting takes no time: each timer (Task.Delay on this clock) moves the clock on
/// by its due time and fires at once. Code that polls with delays then sees exactly the times it
/// asked for, with no real time passing, so a test of a 1-second wait is exact and instant.
/// Only the clock's own readings move: nothing else waits for real time.
/// </summary>
public sealed class SteppingClock(DateTimeOffset start) : TimeProvider
{
    private long _elapsedTicks;

    public SteppingClock()
        : this(new DateTimeOffset(2026, 12, 5, 9, 0, 0, TimeSpan.Zero))
    {
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _elapsedTicks);

    public override DateTimeOffset GetUtcNow() => start + TimeSpan.FromTicks(GetTimestamp());

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime != Timeout.InfiniteTimeSpan)
        {
            Interlocked.Add(ref _elapsedTicks, dueTime.Ticks);
            // Not on this thread: the caller has not yet kept the timer it is being handed.
            ThreadPool.QueueUserWorkItem(_ => callback(state));
        }

        return new FiredTimer();
    }

    private sealed class FiredTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => false;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
