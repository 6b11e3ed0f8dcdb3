using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Home;

/// <summary>
/// What wiring the live home takes: <see cref="Settled"/> when there is nothing to do (or nothing the
/// agent may do), else the link to make and where the image's home goes first.
/// </summary>
public sealed record WiringPlan(HomeWiring? Settled, string? LiveHome = null, string? PersistedHome = null, string? MoveAsideTo = null)
{
    /// <summary>What a dry run says: where overlayfs cannot move the image's home (EXDEV), this container's view of it is removed instead.</summary>
    public string Preview => Settled?.Summary ?? $"would link {LiveHome} to {PersistedHome}"
        + (MoveAsideTo is { } aside ? $", moving the image's home aside to {aside} ({ClearedWhen}: {ClearedInstead})" : string.Empty);

    /// <summary>When the image's home is removed instead of moved.</summary>
    public const string ClearedWhen = "where overlayfs cannot move it, EXDEV";

    public const string ClearedInstead = "removing this container's view of it instead, which the image keeps";
}

/// <summary>What was done so that COMMAND and every later shell use the persisted home.</summary>
/// <param name="HomeForCommand">HOME to give COMMAND, when the live home could not be linked; null to leave HOME alone.</param>
/// <param name="Summary">What happened, for the log.</param>
/// <param name="IsWarning">True when the operator has something to fix.</param>
public sealed record HomeWiring(string? HomeForCommand, string Summary, bool IsWarning = false);

/// <summary>
/// Wires the live home (<c>--home</c>, say <c>/root</c>) to the persisted one. The bash script filled
/// <c>/workspace/home</c> but nothing made the container use it. As root, when the live home is an
/// ordinary directory of the container's own file system, it is moved aside (to
/// <c>HOME.packet-image</c>, never deleted) and replaced by a symlink to the persisted home, so every
/// shell (kubectl exec, ssh, Jupyter terminals) lands there. Otherwise COMMAND gets
/// <c>HOME=/workspace/home</c>, and the log says why and how to wire it for every shell.
/// </summary>
/// <remarks>
/// Only inside a container (Docker's <c>/.dockerenv</c>, Podman's <c>/run/.containerenv</c>, or a
/// Kubernetes pod's <c>KUBERNETES_SERVICE_HOST</c>): on an ordinary machine a root shell running
/// the agent by hand must never find its <c>/root</c> replaced.
/// </remarks>
public sealed class LiveHome(IPosix posix, Func<string, bool> isMountPoint, Func<bool> inContainer, TimeProvider clock)
{
    public const string ImageSuffix = ".packet-image";

    /// <summary>What wiring the live home takes, found by looking: nothing (already wired), a link to make, or HOME for COMMAND only and why.</summary>
    public WiringPlan Decide(string liveHome, string persistedHome)
    {
        int found = posix.LStatAt(FileModes.AtCurrentDirectory, liveHome, out var live);
        if (found >= 0 && posix.LStatAt(FileModes.AtCurrentDirectory, persistedHome, out var persisted) >= 0
            && IsType(live, FilePermissions.S_IFDIR) && live.st_dev == persisted.st_dev && live.st_ino == persisted.st_ino)
        {
            return new WiringPlan(new HomeWiring(null, $"{liveHome} already is the persisted home (the volume is mounted there)"));
        }

        string workspace = Path.GetDirectoryName(persistedHome) ?? "/";
        if (found >= 0 && IsType(live, FilePermissions.S_IFDIR) && posix.LStatAt(FileModes.AtCurrentDirectory, workspace, out var volume) >= 0
            && live.st_dev == volume.st_dev && live.st_ino == volume.st_ino)
        {
            return new WiringPlan(new HomeWiring(
                persistedHome,
                $"HOME={persistedHome} for the command only: {liveHome} is the workspace itself ({workspace}), not its home: the whole volume is mounted there "
                + $"(an engine that ignores subPath does this; podman before 4.4 does), so shells that start in {liveHome} see the volume's top level. "
                + $"Mount the volume's home directory at {liveHome} (subPath: home), or mount the volume only at {workspace}",
                IsWarning: true));
        }

        if (found >= 0 && IsType(live, FilePermissions.S_IFLNK))
        {
            posix.ReadLinkAt(FileModes.AtCurrentDirectory, liveHome, out string target);
            return new WiringPlan(target == persistedHome
                ? new HomeWiring(null, $"{liveHome} already links to {persistedHome}")
                : Fallback(liveHome, persistedHome, $"{liveHome} is a symlink to {target}, which the agent does not replace"));
        }

        string? refusal = posix.EffectiveUserId != 0 ? "the agent is not root, so it cannot replace the live home"
            : !inContainer() ? "this is not a container, and outside one the agent never replaces a home"
            : found >= 0 && !IsType(live, FilePermissions.S_IFDIR) ? $"{liveHome} is not a directory"
            : found >= 0 && isMountPoint(liveHome) ? $"{liveHome} is a mount point, not the container's own directory"
            : null;
        if (refusal is not null)
        {
            return new WiringPlan(Fallback(liveHome, persistedHome, refusal));
        }

        string? aside = found >= 0 ? AsideName(liveHome) : null;
        return new WiringPlan(null, liveHome, persistedHome, aside);
    }

    /// <summary>Carries a plan out: links the live home (moving the image's aside first), or hands on what was decided.</summary>
    public HomeWiring Apply(WiringPlan plan)
    {
        if (plan.Settled is { } settled)
        {
            return settled;
        }

        string liveHome = plan.LiveHome!;
        string persistedHome = plan.PersistedHome!;
        string? movedTo = null;
        bool removed = false;
        if (plan.MoveAsideTo is { } aside)
        {
            movedTo = aside;
            int moved = NoReplaceRename.Move(posix, FileModes.AtCurrentDirectory, liveHome, FileModes.AtCurrentDirectory, aside);
            if (moved < 0 && PosixException.ErrnoOf(moved) == Errno.EXDEV)
            {
                // overlayfs without redirect_dir cannot move a directory of the image's layer. The
                // container's view of it is discardable: the image keeps the original, the volume the
                // seeded copy, and every container start begins from the image again.
                movedTo = null;
                int cleared = RemoveTree(liveHome);
                if (cleared < 0)
                {
                    return Fallback(liveHome, persistedHome, $"it could not be moved aside (EXDEV: overlayfs) nor cleared: {PosixException.Describe(PosixException.ErrnoOf(cleared))}");
                }

                removed = true;
            }
            else if (moved < 0)
            {
                return Fallback(liveHome, persistedHome, $"moving it aside failed: {PosixException.Describe(PosixException.ErrnoOf(moved))}");
            }
        }

        int linked = posix.SymlinkAt(persistedHome, FileModes.AtCurrentDirectory, liveHome);
        if (linked < 0)
        {
            var errno = PosixException.ErrnoOf(linked);
            if (movedTo is not null)
            {
                NoReplaceRename.Move(posix, FileModes.AtCurrentDirectory, movedTo, FileModes.AtCurrentDirectory, liveHome); // put it back
            }

            return Fallback(liveHome, persistedHome, $"creating the link failed: {PosixException.Describe(errno)}");
        }

        return new HomeWiring(null, (movedTo, removed) switch
        {
            ({ } moved, _) => $"linked {liveHome} to {persistedHome}; the image's home was moved to {moved}",
            (null, true) => $"linked {liveHome} to {persistedHome}; this container's view of the image's home was cleared (overlayfs cannot move it; the image keeps it)",
            _ => $"linked {liveHome} to {persistedHome}",
        });
    }

    /// <summary>HOME for COMMAND only, and advice that fits: running as root is suggested only to an agent that is not root.</summary>
    private HomeWiring Fallback(string liveHome, string persistedHome, string why) => new(
        persistedHome,
        $"HOME={persistedHome} for the command only: {why}. Shells started another way (kubectl exec) still get {liveHome}; "
        + $"to wire them too, mount the volume's home at {liveHome} (a subPath mount, see container/k8s/pod-init-container.yaml)"
        + (posix.EffectiveUserId != 0 ? " or run the agent as root" : string.Empty),
        IsWarning: true);

    private int RemoveTree(string path)
    {
        string parent = Path.GetDirectoryName(path) ?? "/";
        int parentFd = posix.OpenAt(FileModes.AtCurrentDirectory, parent, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC, 0);
        if (parentFd < 0)
        {
            return parentFd;
        }

        try
        {
            return Copy.TreeRemover.RemoveChild(posix, parentFd, Path.GetFileName(path));
        }
        finally
        {
            posix.Close(parentFd);
        }
    }

    private string AsideName(string liveHome)
    {
        string aside = liveHome + ImageSuffix;
        return posix.LStatAt(FileModes.AtCurrentDirectory, aside, out _) < 0
            ? aside
            : $"{aside}-{clock.GetUtcNow().UtcDateTime:yyyyMMddTHHmmssZ}";
    }

    private static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;
}
