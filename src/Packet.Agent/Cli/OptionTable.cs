namespace Packet.Agent.Cli;

/// <summary>Every option of every command, each declared once; the parser, the option records and --help read these.</summary>
public static class OptionTable
{
    private const CommandSet WorkspaceCommands = CommandSet.Boot | CommandSet.Status | CommandSet.ResetHome;

    public static readonly PathOption Workspace = new(
        "--workspace", "PACKET_WORKSPACE", "/workspace", "where the persistent volume is mounted (absolute path)", WorkspaceCommands);

    public static readonly PathOption Home = new(
        "--home", "PACKET_HOME", null, "the home directory to seed from", WorkspaceCommands, defaultInHelp: "$HOME, else the passwd entry of the current user");

    public static readonly AccountOption User = new(
        "--user", "PACKET_USER", "the account the home is for: hooks run as it, sshd lets the pod's keys in as it; it must own the persisted home", CommandSet.Boot | CommandSet.ResetHome,
        defaultInHelp: "the owner of --home in the image, else its /etc/passwd entry; the agent's own user when it is not root");

    public static readonly ChoiceOption<GpuMode> Gpu = new(
        "--gpu", "PACKET_GPU", "MODE", GpuMode.Auto, "auto: check and warn; require: a missing or unhealthy GPU fails the boot; off: skip", CommandSet.Boot);

    public static readonly TextOption NvidiaSmi = new(
        "--nvidia-smi", "PACKET_NVIDIA_SMI", "PATH", "nvidia-smi", "the nvidia-smi to run (as root: only one in folders root alone can change, never from the volume)", CommandSet.Boot | CommandSet.Gpu, defaultInHelp: "nvidia-smi on PATH");

    public static readonly SecondsOption GpuTimeout = new(
        "--gpu-timeout", "PACKET_GPU_TIMEOUT", 15, "nvidia-smi is killed after this long (it can hang on a broken driver)", CommandSet.Boot | CommandSet.Gpu);

    public static readonly ChoiceOption<LogFormat> LogFormat = new(
        "--log-format", "PACKET_LOG_FORMAT", "FORMAT", Cli.LogFormat.Simple, "simple, json or systemd (Microsoft.Extensions.Logging.Console formatters)", CommandSet.Boot | CommandSet.Gpu | CommandSet.ResetHome);

    public static readonly SwitchOption Strict = new(
        "--strict", "PACKET_STRICT", false, "a failed step exits 1 instead of being logged as a warning", CommandSet.Boot);

    public static readonly SecondsOption LockTimeout = new(
        "--lock-timeout", "PACKET_LOCK_TIMEOUT", 600, "how long to wait while another agent seeds the same volume", CommandSet.Boot);

    public static readonly SecondsOption HookTimeout = new(
        "--hook-timeout", "PACKET_HOOK_TIMEOUT", 600, "each boot hook is stopped after this long", CommandSet.Boot);

    public static readonly ChoiceOption<LinkHomeMode> LinkHome = new(
        "--link-home", "PACKET_LINK_HOME", "MODE", LinkHomeMode.Auto, "exec mode: auto replaces the live home with a link to /workspace/home when it can (root, ordinary directory), else sets HOME for COMMAND; off leaves both alone", CommandSet.Boot);

    public static readonly ChoiceOption<SshMode> Ssh = new(
        "--ssh", "PACKET_SSH", "MODE", SshMode.Auto, "auto: start sshd only when there is a key to let in (PUBLIC_KEY, SSH_PUBLIC_KEY, --ssh-keys-dir, or one already in the persisted ~/.ssh/authorized_keys), the image has sshd, inside a container, as root; on: also without a key and outside a container, and a missing sshd is a warning; off: never", CommandSet.Boot);

    public static readonly PortOption SshPort = new(
        "--ssh-port", "PACKET_SSH_PORT", 22, "the port sshd listens on", CommandSet.Boot);

    public static readonly AddressOption SshListen = new(
        "--ssh-listen", "PACKET_SSH_LISTEN", "the address sshd listens on (127.0.0.1: only through kubectl port-forward or from inside the pod)", CommandSet.Boot, defaultInHelp: "every address (0.0.0.0 and ::)");

    public static readonly SwitchOption SshRsaHostKey = new(
        "--ssh-rsa-host-key", "PACKET_SSH_RSA_HOST_KEY", false, "also make and offer an RSA host key, for SSH clients too old for ed25519 (OpenSSH before 6.5, some Java and Windows clients); making it costs about 2 s once", CommandSet.Boot);

    public static readonly PathOption SshKeysDirectory = new(
        "--ssh-keys-dir", "PACKET_SSH_KEYS_DIR", null, "a directory (a mounted secret) whose files hold public keys, one per line, added to PUBLIC_KEY's and SSH_PUBLIC_KEY's", CommandSet.Boot, defaultInHelp: "none");

    public static readonly SwitchOption DryRun = new(
        "--dry-run", null, false, "report what would be done; change nothing", CommandSet.Boot | CommandSet.ResetHome);

    public static readonly SwitchOption AtNextBoot = new(
        "--at-next-boot", null, false, "reset-home: move the home aside now, seed at the next boot", CommandSet.ResetHome);

    public static readonly SwitchOption Upgrade = new(
        "--no-upgrade", "PACKET_UPGRADE", true, "do not bring image changes into a seeded home", CommandSet.Boot, defaultInHelp: "upgrade on");

    public static readonly TextOption TerminationLog = new(
        null, "PACKET_TERMINATION_LOG", null, "/dev/termination-log", "where a failed boot writes its short reason (Kubernetes termination message)", CommandSet.Boot);

    public static readonly PathOption RuntimeDirectory = new(
        null, "PACKET_RUNTIME_DIR", null, "where the agent keeps what lasts as long as the container: sshd's config, pid and log, the host keys it loads and makes, the pod's recorded environment, and a boot report the volume could not take; made 0700; used only when it is the agent's user's and no other account may write it, and written only when it is 0700", CommandSet.Boot | CommandSet.Status, defaultInHelp: "/run/packet-agent as root, /tmp/packet-agent-UID otherwise");

    public static readonly TextOption ImageVersion = new(
        null, "PACKET_IMAGE_VERSION", null, null, "set by the image build; a change tells the agent the image's home may have changed", CommandSet.Boot);

    public static readonly SwitchOption Json = new(
        "--json", null, false, "print the GPUs (gpu) or the status (status) as JSON", CommandSet.Gpu | CommandSet.Status);

    /// <summary>In the order --help lists them.</summary>
    public static readonly IReadOnlyList<Option> All =
        [Workspace, Home, User, Gpu, NvidiaSmi, GpuTimeout, LogFormat, Strict, LockTimeout, HookTimeout, LinkHome, Ssh, SshPort, SshListen, SshRsaHostKey, SshKeysDirectory, DryRun, AtNextBoot, Upgrade, TerminationLog, RuntimeDirectory, ImageVersion, Json];
}
