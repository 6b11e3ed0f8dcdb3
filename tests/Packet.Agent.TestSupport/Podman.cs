namespace Packet.Agent.TestSupport;

/// <summary>
/// Rootful podman (Debian 12's 4.3, with runc) whose images, containers and state live in a
/// temporary directory of the test run: nothing is left in the machine's own container storage.
/// Its configuration is tests/tools/containers.conf (runc, explicit ulimits: why is written there);
/// no registry is reachable, so base images are imported.
/// </summary>
public sealed class Podman : IDisposable
{
    private readonly TempDirectory _dir;
    private readonly Dictionary<string, string?> _environment;

    /// <summary>The network namespace every command runs in (<c>nsenter --net</c>); null: the test run's own.</summary>
    private readonly string? _network;
    private readonly bool _owner;

    public Podman()
    {
        _dir = new TempDirectory("podman");
        _owner = true;
        _environment = new Dictionary<string, string?> { ["CONTAINERS_CONF"] = Path.Join(RepositoryPaths.Root, "tests/tools/containers.conf") };
    }

    private Podman(Podman images, string network)
    {
        (_dir, _environment, _network, _owner) = (images._dir, images._environment, network, false);
    }

    /// <summary>
    /// The same engine and images, with every command run in another network namespace (a node of
    /// its own): the ports a pod publishes, its bridge and its firewall rules live there, never on
    /// the test machine's own network. Disposing it leaves the engine alone.
    /// </summary>
    public Podman InNetwork(string networkNamespace) => new(this, networkNamespace);

    public ChildResult Run(params string[] arguments) => Run(TimeSpan.FromMinutes(5), arguments);

    public ChildResult Run(TimeSpan timeout, params string[] arguments) => Start(arguments, timeout, input: null);

    /// <summary>Runs podman with <paramref name="input"/> on its standard input (<c>kube play -</c>).</summary>
    public ChildResult RunWithInput(string input, params string[] arguments) => Start(arguments, TimeSpan.FromMinutes(5), input);

    private ChildResult Start(string[] arguments, TimeSpan timeout, string? input)
    {
        string[] podman = ["podman", "--root", _dir["storage"], "--runroot", _dir["run"], "--storage-driver", "overlay", .. arguments];
        return _network is null
            ? ChildProcess.Run(podman[0], podman[1..], _environment, timeout, input)
            : ChildProcess.Run("nsenter", [$"--net={_network}", .. podman], _environment, timeout, input);
    }

    /// <summary>Runs podman and fails the test, with podman's own words, when it fails.</summary>
    public string MustRun(params string[] arguments)
    {
        var result = Run(arguments);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"podman {string.Join(' ', arguments)} failed: {result}");
        }

        return result.StandardOutput;
    }

    /// <summary>A base image from a root file system on this machine (no registry is reachable).</summary>
    public void Import(string rootFileSystem, string name)
    {
        var result = ChildProcess.Run(
            "sh",
            ["-c", "tar -C \"$1\" -c . | podman --root \"$2\" --runroot \"$3\" --storage-driver overlay import - \"$4\"", "sh", rootFileSystem, _dir["storage"], _dir["run"], name],
            _environment,
            TimeSpan.FromMinutes(5));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"podman import of {rootFileSystem} failed: {result}");
        }
    }

    public void Dispose()
    {
        if (!_owner)
        {
            return;
        }

        Run(TimeSpan.FromMinutes(2), "rm", "--all", "--force", "--time", "0");
        Run(TimeSpan.FromMinutes(2), "rmi", "--all", "--force");
        // Storage keeps overlay mounts of its own under the directory: they go before the directory does.
        foreach (string line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
        {
            string mountPoint = line.Split(' ')[4];
            if (mountPoint.StartsWith(_dir.Path + "/", StringComparison.Ordinal))
            {
                ChildProcess.Run("umount", ["-l", mountPoint]);
            }
        }

        _dir.Dispose();
    }
}
