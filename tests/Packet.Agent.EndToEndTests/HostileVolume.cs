using Mono.Unix.Native;
using Packet.Agent.TestSupport;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// A volume that a user shares with a root agent, as container/k8s/pod-non-root.yaml deploys it:
/// a root init container seeds the home of the image's user (uid 1000), the pod's fsGroup makes the
/// volume's top group-writable (root:1000, 2775), and between boots that user may do anything its
/// rights allow (<see cref="AsUser"/>, through setpriv). Everything lives on a tmpfs of the test's
/// own, so hard links can reach the canaries beside the workspace. A boot is the published binary as
/// root in mount, PID and network namespaces of its own: a tmpfs at /run (its runtime directory),
/// an /etc/passwd that has the user, and the image's PATH with the volume's bin first (as the
/// Dockerfile sets it). Every program planted for root records who ran it (<see cref="Runs"/>); every
/// link planted for root points at a canary (<see cref="CanaryUnchanged"/>).
/// </summary>
public sealed class HostileVolume : IDisposable
{
    public const uint User = 1000;
    private const string Untouched = "untouched\n";
    private readonly TmpfsMount _fs = new(size: "256m", inodes: "64k");

    public HostileVolume()
    {
        Workspace = _fs.Create("workspace");
        ChildProcess.MustSucceed("chown", $"0:{User}", Workspace);
        ChildProcess.MustSucceed("chmod", "2775", Workspace);
        ImageHome = _fs.Create("image-home");
        HomeFixture.Write(ImageHome, ".bashrc", "# the image's\n");
        HomeFixture.Write(ImageHome, ".profile", "# the image's\n");
        ChildProcess.MustSucceed("chown", "-R", $"{User}:{User}", ImageHome);
        File.WriteAllText(Canary, Untouched);
        File.WriteAllText(UserCanary, Untouched);
        ChildProcess.MustSucceed("chown", $"{User}:{User}", UserCanary);
        CanaryDirectory = _fs.Create("canary-dir");
        File.WriteAllText(RunsFile, string.Empty);
        ChildProcess.MustSucceed("chmod", "666", RunsFile);
        ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", "client@test", "-f", this["client"]);
        ClientKey = File.ReadAllText(this["client.pub"]).Trim();
        var passwd = File.ReadAllLines("/etc/passwd").Where(line => line.Split(':') is { Length: > 2 } fields && fields[2] != User.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        passwd.Add($"dev:x:{User}:{User}::{PersistedHome}:/bin/sh");
        File.WriteAllLines(this["passwd"], passwd);
        Port = SshPod.FreePort();
    }

    public string Workspace { get; }

    /// <summary>The image's home: the user's (the hooks' and sshd's account comes from it).</summary>
    public string ImageHome { get; }

    public string PersistedHome => Path.Join(Workspace, "home");

    public string State => Path.Join(Workspace, ".packet");

    /// <summary>Root's file beside the workspace, on the same file system: what no boot may change.</summary>
    public string Canary => this["canary"];

    /// <summary>The user's own file beside the workspace, which it may hard-link into the volume.</summary>
    public string UserCanary => this["user-canary"];

    /// <summary>Root's empty directory beside the workspace: no boot may put anything into it.</summary>
    public string CanaryDirectory { get; }

    public string ClientKey { get; }

    public int Port { get; }

    private string RunsFile => this["runs"];

    public string this[string relative] => Path.Join(_fs.Path, relative);

    /// <summary>Who ran each planted program: "NAME UID" lines.</summary>
    public IReadOnlyList<string> Runs => File.ReadAllLines(RunsFile);

    /// <summary>The planted programs that ran as root.</summary>
    public IReadOnlyList<string> RunsAsRoot => Runs.Where(line => line.EndsWith(" 0", StringComparison.Ordinal)).ToList();

    public bool CanaryUnchanged =>
        File.ReadAllText(Canary) == Untouched && File.ReadAllText(UserCanary) == Untouched && Directory.GetFileSystemEntries(CanaryDirectory).Length == 0;

    /// <summary>A program that records its name and who ran it, then fails.</summary>
    public string Planted(string name) => $"#!/bin/sh\necho \"{name} $(id -u)\" >> {RunsFile}\nexit 1\n";

    /// <summary>Runs a script as the volume's user (uid and gid 1000, the fsGroup among its groups); it must succeed.</summary>
    public void AsUser(string script)
    {
        var result = ChildProcess.Run("setpriv", [$"--reuid={User}", $"--regid={User}", $"--groups={User}", "--", "/bin/sh", "-ec", script], new Dictionary<string, string?> { ["HOME"] = PersistedHome });
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"the user's preparation failed: {result}");
        }
    }

    /// <summary>
    /// <c>packet-agent boot</c> as root in a container of its own (see the class), with the pod's key;
    /// <paramref name="command"/> is its COMMAND, run by <c>sh</c> (found on PATH, as a pod's command is) inside that container.
    /// </summary>
    public ChildResult Boot(string command = "true", string[]? options = null, IDictionary<string, string?>? environment = null)
    {
        string[] boot = [RepositoryPaths.AgentBinary, "boot", "--workspace", Workspace, "--home", ImageHome, "--ssh-port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. options ?? [], "--", "sh", "-c", command];
        string script = string.Join(" && ",
            "mount -t tmpfs -o mode=0755 tmpfs /run",
            "touch /run/.containerenv",
            $"mount --bind {ChildProcess.Quote(this["passwd"])} /etc/passwd",
            "ip link set lo up",
            "exec " + string.Join(' ', boot.Select(ChildProcess.Quote)));
        var variables = new Dictionary<string, string?>
        {
            ["PACKET_SSH"] = "auto",
            ["PACKET_GPU"] = "auto",

            // Each boot is a new container, whose image's home is the image's again: nothing links it between boots.
            ["PACKET_LINK_HOME"] = "off",
            ["PACKET_RUNTIME_DIR"] = "/run/packet-agent",
            ["PUBLIC_KEY"] = ClientKey,
            ["PATH"] = $"{Workspace}/venv/bin:{Workspace}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["SSH_CONNECTION"] = null,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            variables[name] = value;
        }

        return ChildProcess.Run("unshare", ["--mount", "--pid", "--net", "--fork", "--mount-proc", "--propagation", "private", "/bin/sh", "-c", script], variables, TimeSpan.FromSeconds(90));
    }

    /// <summary>
    /// A script run as root in a container of its own whose /tmp and /run are private (the
    /// machine's are never touched), with this test's file system still at its path, and the
    /// user in /etc/passwd. Its environment has no PACKET_RUNTIME_DIR: each user's default applies.
    /// </summary>
    public ChildResult InContainer(string script, TimeSpan? timeout = null)
    {
        string here = ChildProcess.Quote(this[string.Empty].TrimEnd('/'));
        string prelude = string.Join(" && ",
            "mount -t tmpfs -o mode=0755 tmpfs /run",
            "mkdir /run/test-fs",
            $"mount --bind {here} /run/test-fs",
            "mount -t tmpfs -o mode=1777 tmpfs /tmp",
            $"mkdir -p {here}",
            $"mount --bind /run/test-fs {here}",
            $"mount --bind {ChildProcess.Quote(this["passwd"])} /etc/passwd");
        return ChildProcess.Run(
            "unshare",
            ["--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "/bin/sh", "-c", $"{prelude} && {script}"],
            new Dictionary<string, string?> { ["PACKET_RUNTIME_DIR"] = null, ["SSH_CONNECTION"] = null },
            timeout ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>A command line run as another uid (and its gid), for <see cref="InContainer"/> scripts.</summary>
    public static string As(uint uid, string command) => $"setpriv --reuid={uid} --regid={uid} --clear-groups -- {command}";

    /// <summary>What a first pod leaves: the home seeded for the user, root's state folder, the user's folders.</summary>
    public void SeedAsAPodWould()
    {
        var first = Boot(options: ["--gpu", "off", "--ssh", "off"]);
        if (first.ExitCode != 0 || !File.Exists(Path.Join(PersistedHome, ".packet-init")))
        {
            throw new InvalidOperationException($"the first boot did not seed: {first}");
        }
    }

    /// <summary>The SHA256 fingerprint of a public key file, as ssh-keygen prints it.</summary>
    public static string Fingerprint(string publicKey) => ChildProcess.Run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKey]).StandardOutput.Split(' ')[1];

    public static uint OwnerOf(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat.st_uid;
    }

    public void Dispose() => _fs.Dispose();
}
