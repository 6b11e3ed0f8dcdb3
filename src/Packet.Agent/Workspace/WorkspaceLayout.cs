namespace Packet.Agent.Workspace;

/// <summary>Every name the agent keeps on the volume, in one place (docs/volumes.md, "What the agent keeps on the volume").</summary>
public static class WorkspaceLayout
{
    /// <summary>The persisted home, <c>/workspace/home</c>.</summary>
    public const string Home = "home";

    /// <summary>The marker inside the persisted home; the bash script used the same name and place.</summary>
    public const string Marker = ".packet-init";

    /// <summary>The persisted home's shell profile, which holds the managed block.</summary>
    public const string ShellProfile = ".bashrc";

    /// <summary>Beside a file of the home both the user and the image changed: the image's version.</summary>
    public const string ImageVersionSuffix = ".packet-new";

    /// <summary><c>/workspace/home.bak-&lt;UTC time&gt;</c>: a home reset-home moved aside.</summary>
    public const string HomeBackupPrefix = "home.bak-";

    /// <summary><c>/workspace/bin</c>, put on PATH by the managed block.</summary>
    public const string Bin = "bin";

    /// <summary><c>/workspace/setup.sh</c>, a hook run at every boot.</summary>
    public const string SetupScript = "setup.sh";

    /// <summary><c>/workspace/requirements.txt</c>, installed into the venv when it changed.</summary>
    public const string Requirements = "requirements.txt";

    /// <summary><c>/workspace/venv</c>, the persisted Python environment.</summary>
    public const string Venv = "venv";

    /// <summary>pip's cache on the volume.</summary>
    public const string PipCache = ".cache/pip";

    /// <summary>The agent's own state, <c>/workspace/.packet</c>; the names below live in it.</summary>
    public const string State = ".packet";

    public const string Lock = "lock";

    /// <summary>Where a seed is copied before it is moved into place; a crash leaves it here to resume.</summary>
    public const string Staging = "staging";

    /// <summary>In staging/ while a seed is copied straight into <c>/workspace/home</c> (on volumes that cannot move a directory whole).</summary>
    public const string InPlaceNote = "home-in-place";

    /// <summary>The last boot's report.</summary>
    public const string Report = "last-boot.json";

    /// <summary>How many earlier reports are kept (<see cref="PreviousReport"/>).</summary>
    public const int PreviousReportsKept = 3;

    /// <summary>The one line the shell block shows after a boot with warnings.</summary>
    public const string ReportBanner = "last-boot.warnings";

    /// <summary>The manifest of the image's home as seeded or last upgraded.</summary>
    public const string ImageManifest = "image-manifest";

    /// <summary>Which first-boot hooks succeeded (with their content), and the requirements installed.</summary>
    public const string HookState = "hooks.json";

    public const string FirstBootHooks = "first-boot.d";

    public const string BootHooks = "boot.d";

    /// <summary>One log per hook, and sshd's.</summary>
    public const string Logs = "logs";

    /// <summary>The pod's SSH host keys (root only).</summary>
    public const string HostKeys = "ssh";

    /// <summary>The SSH step's record, for status.</summary>
    public const string SshState = "ssh.json";

    public const string SshdLog = "sshd.log";

    /// <summary>
    /// <c>/workspace/.packet/user-UID</c>: the account UID's own folder, made for it by root (or by
    /// its own agent): its home's records (<see cref="HookState"/>, <see cref="ImageManifest"/>)
    /// and, for an agent that runs as that user, its reports, logs and staging.
    /// </summary>
    public static string AccountFolder(uint uid) => $"user-{uid.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    public const string AccountFolderPrefix = "user-";

    /// <summary>Account <paramref name="uid"/>'s state folder relative to the workspace: <c>.packet</c> for root, <c>.packet/user-UID</c> otherwise.</summary>
    public static string AccountState(uint uid) => uid == 0 ? State : System.IO.Path.Join(State, AccountFolder(uid));

    /// <summary>Where root moves what it finds in its state folder and cannot trust: <c>NAME.untrusted-&lt;UTC time&gt;</c>.</summary>
    public const string UntrustedSuffix = ".untrusted-";

    /// <summary>
    /// What root keeps in the state folder and trusts only when root made it: everything in
    /// <c>.packet</c> but the hook folders and the accounts' folders, which are their users' by design.
    /// </summary>
    public static readonly IReadOnlyList<string> RootKept =
    [
        Lock, Staging, Report, PreviousReport(1), PreviousReport(2), PreviousReport(3), ReportBanner, ImageManifest, HookState, Logs, HostKeys, SshState,
    ];

    /// <summary><c>last-boot.1.json</c> (the one before the last) to <c>last-boot.3.json</c>.</summary>
    public static string PreviousReport(int generation) => $"last-boot.{generation}.json";
}
