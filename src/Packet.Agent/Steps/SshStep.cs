using System.Collections;
using System.IO.Abstractions;
using Mono.Unix.Native;
using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>Where the SSH step keeps what lives only as long as the container: sshd's config (it holds the pod's variables), its pid file and log, the host keys it loads and makes.</summary>
/// <param name="Runtime">A root-only directory on the container's own file system (<c>/run/packet-agent</c>), checked before use (<see cref="RuntimeDirectory"/>).</param>
/// <param name="PrivilegeSeparation">The empty directory sshd chroots its unprivileged child into (Debian's sshd: <c>/run/sshd</c>).</param>
public sealed record SshPaths(string Runtime, string PrivilegeSeparation);

/// <summary>What the step does with sshd.</summary>
public enum SshdAction
{
    /// <summary>Start sshd: none of this container runs yet.</summary>
    Start,

    /// <summary>Stop the sshd an earlier boot in this container started, whose configuration differs, and start this one; its sessions go on.</summary>
    Replace,

    /// <summary>The sshd an earlier boot in this container started runs with this very configuration: leave it (and its sessions) alone.</summary>
    LeaveAlone,
}

/// <summary>
/// Step 7: SSH into the pod, as the GPU clouds' start scripts offer it, and only when asked: with
/// <c>--ssh auto</c> (the default) sshd starts only when there is a key to let in (the pod's
/// <c>PUBLIC_KEY</c>, <c>SSH_PUBLIC_KEY</c>, <c>--ssh-keys-dir</c>, or one the user put into the
/// persisted <c>~/.ssh/authorized_keys</c>), the image has sshd, inside a container, as root. The
/// pod's keys become a managed block of that file, host keys are made once and kept on the volume (the
/// pod's identity outlives its containers), the pod's variables reach every session
/// (<see cref="SshdConfig"/>), and sshd runs in the background with StrictModes on. A boot run again
/// in the same container leaves a running sshd alone when its configuration is the same. A failure is
/// a warning. Root's trust boundary holds here: sshd and ssh-keygen come from the image
/// (<see cref="ProgramTrust.ForImageProgram"/>); the pod's keys let in the home's account
/// (<see cref="HomeAccount"/>), never an owner read off the volume; host keys are made, and sshd
/// logs, in the root-only runtime directory, and keys reach the volume by descriptor.
/// </summary>
public sealed partial class SshStep(
    IPosix posix, IFileSystem files, IProcessRunner runner, CommandResolver resolver, ProgramTrust trust, Func<IDictionary> environment, SshPaths paths, Func<bool> insideContainer, IAccounts accounts, StrictModes strictModes, ILogger logger, TimeProvider clock)
    : IBootStep<HomeState?, NoValue>
{
    public const string RuntimeHostKeysFolder = "host-keys";

    /// <summary>Where ssh-keygen makes a new host key: a folder of the root-only runtime directory, emptied before each use.</summary>
    public const string KeygenFolder = "keygen";

    // Where images keep sshd when PATH does not name it (a login PATH has sbin, a container's ENV PATH may not).
    private const string SbinDirectories = "/usr/sbin:/usr/local/sbin:/sbin";
    private const int MaxKeyFileBytes = 64 * 1024;
    private const int MaxAuthorizedKeysBytes = 1 << 20;

    public StepId Id => StepId.Ssh;

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
        var imageOnly = trust.ForImageProgram(workspace?.Path);
        var sshd = resolver.Resolve("sshd", searchPath, imageOnly);
        var problems = new List<string>();
        if (sshd.PassedOverNote is { } plantedSshd)
        {
            problems.Add(plantedSshd);
        }

        if (CannotRunHere(options, sshd, problems) is { } cannot)
        {
            return cannot;
        }

        if (AccountToLetIn(settings.Account, input, options, problems) is not var (login, home))
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem(string.Join("; ", problems)), default);
        }

        var pod = PublicKeys.Gather(name => environment()[name] as string, KeyFiles(options.SshKeysDirectory, problems));
        problems.AddRange(pod.Problems);
        string keysFile = Path.Join(home.Path, ".ssh", "authorized_keys");
        string current = ReadKeys(home, problems);
        int byHand = AuthorizedKeysBlock.KeysOutside(current);
        if (options.Ssh == SshMode.Auto && pod.Keys.Count == 0 && byHand == 0)
        {
            return NoKeyToLetIn(home, keysFile, current, problems);
        }

        var keygen = resolver.Resolve("ssh-keygen", searchPath, imageOnly);
        if (keygen.PassedOverNote is { } plantedKeygen)
        {
            problems.Add(plantedKeygen);
        }

        if (!keygen.Found)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem(string.Join("; ", [$"the image has sshd but no ssh-keygen to make its host keys ({keygen.Failure}); sshd not started", .. problems])), default);
        }

        return PlanSshd(new SshFound(sshd.Path!, keygen.Path!, login, home, keysFile, current, pod.Keys, variables), input, options, problems);
    }

    /// <summary>
    /// sshd, its config and host keys, once there is everything to start it with: what the
    /// runtime directory holds (an sshd an earlier boot started), and what to do with it.
    /// </summary>
    private StepPlan<NoValue> PlanSshd(SshFound found, HomeState? input, BootOptions options, List<string> problems)
    {
        bool runtimeThere = posix.LStatAt(FileModes.AtCurrentDirectory, paths.Runtime, out _) >= 0;
        if (runtimeThere && RuntimeDirectory.Refusal(posix, paths.Runtime) is { } unsafeRuntime)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem(string.Join("; ", [$"{unsafeRuntime}; sshd not started (sshd's config, host keys and log go there: remove it, or set PACKET_RUNTIME_DIR to a directory only root can reach)", .. problems])), default);
        }

        var hostKeys = HostKeys(input, options, problems);
        var running = runtimeThere ? AgentSshd.Find(files, paths.Runtime) : null;
        var leftOut = new List<string>();
        var sessions = SshdConfig.Capped(SshdConfig.SessionEnvironment(found.Variables, leftOut), out string? capped);
        string[] notes = [.. new[] { SshdConfig.LeftOutNote(leftOut), capped }.OfType<string>()];
        string config = SshdConfig.Render(new SshdSettings(
            options.SshPort, options.SshListen, hostKeys.Files, found.Login.Name, found.KeysFile, Path.Join(paths.Runtime, AgentSshd.PidFile), sessions));
        var action = running is null ? SshdAction.Start
            : running.Config == config && hostKeys.Stale.Count == 0 ? SshdAction.LeaveAlone
            : SshdAction.Replace;
        return new SshPlan(
            new SshDecision(found.Sshd, found.Keygen, options.SshPort, options.SshListen, found.Keys, input, found.Home, found.KeysFile, hostKeys, found.Login, config, action, running, Path.Join(paths.Runtime, WorkspaceLayout.SshdLog), sessions, notes, problems),
            Look(input, found.Home, found.KeysFile, hostKeys, found.CurrentKeys, found.Keys),
            paths);
    }

    /// <summary>
    /// The account the pod's keys let in, and the home its keys go to: the home's account, which
    /// must have an /etc/passwd entry (sshd looks it up) and own that home. A persisted home another
    /// account owns gets no keys: a user of the volume can rename any folder to <c>home</c>.
    /// Null, with the problem said, when there is none.
    /// </summary>
    private (Account Login, KeysHome Home)? AccountToLetIn(AccountChoice choice, HomeState? input, BootOptions options, List<string> problems)
    {
        if (choice.Account is not { } account)
        {
            problems.Insert(0, $"no account to let the pod's keys in as: {choice.Unknown}; sshd not started");
            return null;
        }

        var home = WhereKeysGo(input, options);
        if (accounts.ByUid(account.Uid) is not { } login)
        {
            problems.Insert(0, $"the home's account, {account}, has no entry in /etc/passwd: sshd can log no one in to {home.Path}; sshd not started");
            return null;
        }

        if (home.Owner is { } owner && owner != account.Uid)
        {
            problems.Insert(0, $"{home.Path} belongs to uid {owner}, not to the home's account, {account}: the pod's keys are not written into it and sshd is not started "
                + $"(if the home is right, give it to its account: chown -R {account.Uid}:{account.Gid} {home.Path}; if the account is, name it: --user {owner})");
            return null;
        }

        return (login, home);
    }

    /// <summary>Why sshd cannot run here (no sshd, not a container under auto, not root); null when it can.</summary>
    private StepPlan<NoValue>? CannotRunHere(BootOptions options, CommandResolution sshd, List<string> problems)
    {
        if (!sshd.Found)
        {
            string noSshd = string.Join("; ", ["the image has no sshd (install openssh-server to log in over SSH)", .. problems]);
            return problems.Count > 0 ? StepPlan.Settled<NoValue>(StepResult.Problem(noSshd), default) : NotPossible(options, noSshd);
        }

        if (options.Ssh == SshMode.Auto && !insideContainer())
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("not inside a container: --ssh auto starts sshd only in one (--ssh on starts it here)"), default);
        }

        return posix.EffectiveUserId != 0 ? NotPossible(options, $"sshd needs root to log users in, and the agent runs as uid {posix.EffectiveUserId}") : null;
    }

    public (StepResult Result, NoValue Value) Apply(StepPlan<NoValue> plan, BootSettings settings) => plan switch
    {
        SshPlan ssh => (Apply(ssh.Decision, settings), default),
        StaleKeysPlan stale => (RemoveStaleKeys(stale), default),
        _ => (plan.Preview, plan.Planned),
    };

    private static StepPlan<NoValue> NotPossible(BootOptions options, string reason) =>
        StepPlan.Settled<NoValue>(options.Ssh == SshMode.On ? StepResult.Problem($"{reason}; --ssh on") : StepResult.Skipped(reason), default);

    /// <summary>
    /// Auto, and no key anywhere: sshd is not started, and no host key made. Keys an earlier boot took
    /// from the pod (its block) are removed, as every boot removes those the pod no longer gives.
    /// </summary>
    private StepPlan<NoValue> NoKeyToLetIn(KeysHome home, string keysFile, string current, List<string> problems)
    {
        string reason = $"no key to let in: PUBLIC_KEY, SSH_PUBLIC_KEY and --ssh-keys-dir give none, and {keysFile} holds none; sshd not started "
            + "(give the pod a public key to log in over SSH; --ssh on starts sshd without one)";
        int stale = AuthorizedKeysBlock.KeysInBlock(current);
        string summary = string.Join("; ", [reason, .. problems]);
        var result = problems.Count > 0 ? StepResult.Problem(summary) : StepResult.Skipped(summary);
        if (stale == 0)
        {
            return StepPlan.Settled<NoValue>(result, default);
        }

        return new StaleKeysPlan(result, home, keysFile, stale, summary, Look(null, home, keysFile, null, current, []));
    }

    private StepResult RemoveStaleKeys(StaleKeysPlan plan)
    {
        try
        {
            var problems = new List<string>();
            WriteAuthorizedKeys(plan.Home, [], problems);
            return problems.Count == 0 ? plan.Preview with { Summary = plan.Done } : StepResult.Problem(string.Join("; ", [plan.Done, .. problems]));
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{plan.Summary}; could not remove the keys an earlier boot took from the pod: {e.Message}");
        }
    }

    /// <summary>The files of the keys directory in name order; a Kubernetes secret's own entries (<c>..data</c>) and what is not a readable file are passed over.</summary>
    private List<(string Name, string Text)> KeyFiles(string? directory, List<string> problems)
    {
        var keyFiles = new List<(string, string)>();
        if (directory is null)
        {
            return keyFiles;
        }

        try
        {
            foreach (string file in files.Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(file);
                var info = files.FileInfo.New(file);
                if (name.StartsWith("..", StringComparison.Ordinal) || info.Length > MaxKeyFileBytes)
                {
                    continue;
                }

                keyFiles.Add((file, files.File.ReadAllText(file)));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"cannot read the keys in {directory} (--ssh-keys-dir): {e.Message}");
        }

        return keyFiles;
    }

    /// <summary>
    /// The home whose ~/.ssh gets the pod's keys: the persisted one when it is seeded (or, in a dry
    /// run, will be), else the live one; and its owner (in a dry run of a first seed, the live home's,
    /// which the seed keeps).
    /// </summary>
    private KeysHome WhereKeysGo(HomeState? input, BootOptions options)
    {
        if (input is { Ready: true } state)
        {
            string persisted = state.Workspace.PathOf(WorkspaceLayout.Home);
            if (state.Workspace.LStat(WorkspaceLayout.Home, out var stat) >= 0)
            {
                return new KeysHome(persisted, state, stat.st_uid);
            }

            return new KeysHome(persisted, state, posix.LStatAt(FileModes.AtCurrentDirectory, options.Home, out var live) >= 0 ? live.st_uid : null);
        }

        return new KeysHome(options.Home, null, posix.LStatAt(FileModes.AtCurrentDirectory, options.Home, out var own) >= 0 ? own.st_uid : null);
    }

    /// <summary>The home's authorized_keys as it is now; empty when there is none yet.</summary>
    private string ReadKeys(KeysHome home, List<string> problems)
    {
        try
        {
            using var directory = OpenHome(home, create: false);
            using var ssh = directory?.TryOpenDirectory(".ssh");
            return ssh?.ReadFile("authorized_keys", MaxAuthorizedKeysBytes, out _) is { } bytes ? AuthorizedKeysBlock.FromBytes(bytes) : string.Empty;
        }
        catch (IOException e)
        {
            problems.Add($"cannot read the keys already there: {e.Message}");
            return string.Empty;
        }
    }

    /// <summary>The home, open: through the workspace without following a link when it is the persisted one; null when it does not exist (yet).</summary>
    private DirectoryHandle? OpenHome(KeysHome home, bool create)
    {
        if (home.Persisted is { } state)
        {
            return create ? state.Workspace.OpenDirectory(WorkspaceLayout.Home) : state.Workspace.TryOpenDirectory(WorkspaceLayout.Home);
        }

        try
        {
            return DirectoryHandle.Open(posix, home.Path);
        }
        catch (PosixException e) when (!create && e.Errno == Errno.ENOENT)
        {
            return null;
        }
    }

    /// <summary>
    /// The host keys: ed25519 (RSA too when asked), kept on the volume when there is one (the pod's
    /// identity), and those not made yet. A key on the volume is taken only when root alone could
    /// have written or read it (its folder root's, 0700; the file root's, one name, private):
    /// another is made in its place. sshd loads them from the container's runtime folder, a
    /// root-only copy: it refuses a key file others may read, and a FAT or exFAT volume shows every
    /// file as 0777. Copies that differ from the volume's keys (or are missing) are stale: a running
    /// sshd holds old keys.
    /// </summary>
    private HostKeySet HostKeys(HomeState? input, BootOptions options, List<string> problems)
    {
        string[] types = options.SshRsaHostKey ? ["ed25519", "rsa"] : ["ed25519"];
        string loaded = Path.Join(paths.Runtime, RuntimeHostKeysFolder);
        if (input is null)
        {
            return new HostKeySet(loaded, loaded, OnVolume: false, types, types.Where(type => !files.File.Exists(Path.Join(loaded, HostKeyName(type)))).ToArray(), Stale: []);
        }

        using var state = StateFolder.TryOpenShared(posix, input.Workspace);
        using var keys = state?.TryOpenDirectory(WorkspaceLayout.HostKeys);
        var trust = input.Workspace.Trust;
        bool folderTrusted = keys is not null && posix.FStat(keys.Fd, out var folder) >= 0 && trust.Trusts(folder.st_uid)
            && ((folder.st_mode & FilePermissions.ALLPERMS) == FileModes.PrivateDirectory || !trust.KeepsModes);
        if (keys is not null && !folderTrusted)
        {
            problems.Add($"{keys.Path} is not root's alone (0700): its host keys may be known to others, so new ones are made");
        }

        var toMake = types.Where(type => keys is null || !folderTrusted || TrustedKey(keys, HostKeyName(type)) is null).ToArray();
        var stale = types.Where(type => toMake.Contains(type) || !SameContent(keys!, HostKeyName(type), Path.Join(loaded, HostKeyName(type)))).ToArray();
        return new HostKeySet(input.Workspace.PathOf(Path.Join(WorkspaceLayout.State, WorkspaceLayout.HostKeys)), loaded, OnVolume: true, types, toMake, stale);
    }

    /// <summary>
    /// A host key's bytes when root alone could have written or read it (root's regular file, one
    /// name, no rights for others; on a volume that keeps no modes, as private as its mount); else null.
    /// </summary>
    private static byte[]? TrustedKey(DirectoryHandle folder, string name)
    {
        try
        {
            var key = folder.ReadFile(name, MaxKeyFileBytes, out var stat);
            bool closed = (stat.st_mode & (FilePermissions.S_IRWXG | FilePermissions.S_IRWXO)) == 0 || !folder.Trust.KeepsModes;
            return key is not null && folder.Trust.Trusts(stat.st_uid) && stat.st_nlink == 1 && closed ? key : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Whether a key on the volume and its copy in the runtime folder hold the same bytes.</summary>
    private bool SameContent(DirectoryHandle folder, string name, string copy)
    {
        try
        {
            return files.File.Exists(copy) && TrustedKey(folder, name) is { } kept && kept.AsSpan().SequenceEqual(files.File.ReadAllBytes(copy));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string HostKeyName(string type) => $"ssh_host_{type}_key";
}
