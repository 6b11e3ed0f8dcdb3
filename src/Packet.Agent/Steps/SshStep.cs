using System.Collections;
using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>Where the SSH step keeps what lives only as long as the container: sshd's config (it holds the pod's variables), its pid file, temporary host keys.</summary>
/// <param name="Runtime">A root-only directory on the container's own tmpfs (<c>/run/packet-agent</c>).</param>
/// <param name="PrivilegeSeparation">The empty directory sshd chroots its unprivileged child into (Debian's sshd: <c>/run/sshd</c>).</param>
public sealed record SshPaths(string Runtime, string PrivilegeSeparation);

/// <summary>
/// Step 7: SSH into the pod, as the GPU clouds' start scripts offer it, done so that it survives a
/// restart: the pod's public keys (<c>PUBLIC_KEY</c>, <c>SSH_PUBLIC_KEY</c>, <c>--ssh-keys-dir</c>)
/// as a managed block in the persisted <c>~/.ssh/authorized_keys</c>, host keys made once and kept
/// on the volume (the pod's identity outlives its containers), the pod's variables in every session
/// (<see cref="SshdConfig"/>), and sshd started in the background before exec. On when the image has
/// sshd, inside a container (<c>--ssh auto</c> never starts an sshd on an ordinary machine, where
/// recovery runs by hand happen); a failure is a warning.
/// </summary>
public sealed partial class SshStep(IPosix posix, IProcessRunner runner, CommandResolver resolver, Func<IDictionary> environment, SshPaths paths, Func<bool> insideContainer, ILogger logger)
    : IBootStep<HomeState?, NoValue>
{
    public const string StateFile = "ssh.json";
    public const string HostKeysFolder = "ssh";
    public const string LogFile = "sshd.log";

    // Where images keep sshd when PATH does not name it (a login PATH has sbin, a container's ENV PATH may not).
    private const string SbinDirectories = "/usr/sbin:/usr/local/sbin:/sbin";
    private const int MaxKeyFileBytes = 64 * 1024;

    public string Name => "ssh";

    public int Number => 7;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(HomeState? input, BootSettings settings)
    {
        var options = settings.Options;
        if (options.Ssh == SshMode.Off)
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("--ssh off"), default);
        }

        var workspace = input?.Workspace;
        var variables = WorkspaceEnvironment.ForCommand(environment(), workspace is null ? null : (workspace.Path, workspace.Exists));
        string searchPath = $"{variables.GetValueOrDefault("PATH")}:{SbinDirectories}";
        var sshd = resolver.Resolve("sshd", searchPath);
        if (!sshd.Found)
        {
            return NotPossible(options, "the image has no sshd (install openssh-server to log in over SSH)");
        }

        if (options.Ssh == SshMode.Auto && !insideContainer())
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("not inside a container: --ssh auto starts sshd only in one (--ssh on starts it here)"), default);
        }

        if (posix.EffectiveUserId != 0)
        {
            return NotPossible(options, $"sshd needs root to log users in, and the agent runs as uid {posix.EffectiveUserId}");
        }

        var keygen = resolver.Resolve("ssh-keygen", searchPath);
        if (!keygen.Found)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem($"the image has sshd but no ssh-keygen to make its host keys ({keygen.Failure}); sshd not started"), default);
        }

        var problems = new List<string>();
        var pod = PublicKeys.Gather(name => environment()[name] as string, KeyFiles(options.SshKeysDirectory, problems));
        problems.AddRange(pod.Problems);
        var leftOut = new List<string>();
        var sessions = SshdConfig.SessionEnvironment(variables, leftOut);
        string home = input is { Ready: true } ? input.Workspace.PathOf(WorkspaceLayout.Home) : options.Home;
        string hostKeys = workspace is null
            ? Path.Join(paths.Runtime, "host-keys")
            : workspace.PathOf(Path.Join(WorkspaceLayout.State, HostKeysFolder));
        var plan = new SshPlan(sshd.Path!, keygen.Path!, options.SshPort, pod.Keys, home, input, hostKeys, sessions, leftOut, problems);
        return StepPlan.ToApply<NoValue>(StepResult.Ok(plan.Preview), default, () => (Apply(plan, settings), default));
    }

    private static StepPlan<NoValue> NotPossible(BootOptions options, string reason) =>
        StepPlan.Settled<NoValue>(options.Ssh == SshMode.On ? StepResult.Problem($"{reason}; --ssh on") : StepResult.Skipped(reason), default);

    /// <summary>The files of the keys directory in name order; a Kubernetes secret's own entries (<c>..data</c>) and what is not a readable file are passed over.</summary>
    private static List<(string Name, string Text)> KeyFiles(string? directory, List<string> problems)
    {
        var files = new List<(string, string)>();
        if (directory is null)
        {
            return files;
        }

        try
        {
            foreach (string file in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(file);
                var info = new FileInfo(file);
                if (name.StartsWith("..", StringComparison.Ordinal) || info.Length > MaxKeyFileBytes)
                {
                    continue;
                }

                files.Add((file, File.ReadAllText(file)));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"cannot read the keys in {directory} (--ssh-keys-dir): {e.Message}");
        }

        return files;
    }

    /// <summary>What the step decided: sshd and ssh-keygen, the keys, where they go, the host keys' place, the sessions' variables.</summary>
    private sealed record SshPlan(
        string Sshd,
        string Keygen,
        int Port,
        IReadOnlyList<PublicKey> Keys,
        string Home,
        HomeState? Workspace,
        string HostKeys,
        IReadOnlyDictionary<string, string> Sessions,
        IReadOnlyList<string> LeftOut,
        IReadOnlyList<string> Problems)
    {
        public bool HostKeysPersist => Workspace is not null;

        public string Preview =>
            $"would start {Sshd} on port {Port} with {Units.Count(Keys.Count)} key{(Keys.Count == 1 ? string.Empty : "s")} from the pod in {Path.Join(Home, ".ssh", "authorized_keys")}; "
            + (HostKeysPersist ? $"host keys kept in {HostKeys}" : "temporary host keys (no volume)")
            + $"; {Units.Count(Sessions.Count)} variables for sessions"
            + (Problems.Count > 0 ? $"; {string.Join("; ", Problems)}" : string.Empty);
    }
}
