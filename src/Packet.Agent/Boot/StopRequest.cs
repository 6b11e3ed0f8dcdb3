
namespace Packet.Agent.Boot;

/// <summary>
/// A request to stop the boot before it execs COMMAND: the first stop signal (or, in a test, a
/// call). Steps watch <see cref="Token"/> and wind down, leaving what they did resumable.
/// </summary>
public sealed class StopRequest : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private int _signal;

    public CancellationToken Token => _stop.Token;

    public bool Requested => Volatile.Read(ref _signal) != 0;

    /// <summary>The signal's number (15 for SIGTERM); 0 until a stop is requested.</summary>
    public int Signal => Volatile.Read(ref _signal);

    public string SignalName => Signal switch
    {
        15 => "SIGTERM",
        2 => "SIGINT",
        1 => "SIGHUP",
        var n => $"signal {n}",
    };

    /// <summary>Asks the boot to stop; false when a stop was already asked for.</summary>
    public bool Request(int signal)
    {
        if (Interlocked.CompareExchange(ref _signal, signal, 0) != 0)
        {
            return false;
        }

        _stop.Cancel();
        return true;
    }

    public void Dispose() => _stop.Dispose();
}
