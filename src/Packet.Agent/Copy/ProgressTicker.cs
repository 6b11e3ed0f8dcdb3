namespace Packet.Agent.Copy;

/// <summary>
/// Calls an action at a fixed interval until disposed. Its own thread, not a pool timer: a busy or
/// starved thread pool must not silence progress. Dispose waits for a call in flight, so no
/// progress line can follow the line that reports the copy's result.
/// </summary>
public sealed class ProgressTicker : IDisposable
{
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;

    public ProgressTicker(TimeSpan interval, Action tick)
    {
        _thread = new Thread(() =>
        {
            while (!_stop.Wait(interval))
            {
                tick();
            }
        })
        {
            IsBackground = true,
            Name = "progress",
        };
        _thread.Start();
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        _stop.Dispose();
    }
}
