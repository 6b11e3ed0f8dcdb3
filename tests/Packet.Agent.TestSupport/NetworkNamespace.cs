using System.Diagnostics;

namespace Packet.Agent.TestSupport;

/// <summary>
/// A network namespace of the test's own (root only), held open by a sleeping process: a node's
/// network, where a pod's published ports, bridge and firewall rules live apart from the test
/// machine's. <see cref="Path"/> is what <c>nsenter --net=</c> takes. The process, and with it the
/// namespace, ends on dispose.
/// </summary>
public sealed class NetworkNamespace : IDisposable
{
    private readonly Process _holder;

    public NetworkNamespace()
    {
        var start = new ProcessStartInfo("unshare", ["--net", "/bin/sh", "-c", "ip link set lo up && echo up && exec sleep infinity"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        _holder = Process.Start(start)!;
        if (_holder.StandardOutput.ReadLine() != "up")
        {
            _holder.Kill();
            throw new InvalidOperationException("unshare --net could not make a network namespace");
        }

        Path = $"/proc/{_holder.Id}/ns/net";
    }

    public string Path { get; }

    /// <summary>Runs a program inside the namespace (an SSH client reaching a pod's published port).</summary>
    public ChildResult Run(string program, IEnumerable<string> arguments, TimeSpan? timeout = null) =>
        ChildProcess.Run("nsenter", [$"--net={Path}", program, .. arguments], timeout: timeout);

    public void Dispose()
    {
        _holder.Kill();
        _holder.WaitForExit();
        _holder.Dispose();
    }
}
