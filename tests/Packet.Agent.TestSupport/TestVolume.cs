namespace Packet.Agent.TestSupport;

/// <summary>The volumes users mount at /workspace that this machine can make for real (root only).</summary>
public enum VolumeKind
{
    Ext4,
    Xfs,
    Btrfs,
    Tmpfs,

    /// <summary>A FUSE pass-through (Debian's bindfs) over ext4: it answers EINVAL to renameat2 flags, as the Linux NFS client does.</summary>
    Bindfs,

    /// <summary>FAT through Debian's fusefat: no modes, owners, symlinks, FIFOs or hard links; a directory moved to another arrives empty.</summary>
    Vfat,

    /// <summary>exFAT through Debian's exfat-fuse: every entry shows 0777, no owners, symlinks, FIFOs or hard links.</summary>
    Exfat,
}

/// <summary>
/// A real volume of one kind, made in a temporary directory of the test and mounted there:
/// a loop-mounted image for block file systems, a FUSE daemon from Debian for the others.
/// Unmounted and removed on dispose.
/// </summary>
public sealed class TestVolume : IDisposable
{
    private readonly TempDirectory _dir;
    private readonly VolumeKind _kind;
    private string? _loopDevice;

    public TestVolume(VolumeKind kind, string size = "320M", string? mkfsOptions = null)
    {
        _kind = kind;
        _dir = new TempDirectory($"volume-{kind.ToString().ToLowerInvariant()}");
        Path = _dir.Create("mnt");
        string image = _dir["image"];
        try
        {
            switch (kind)
            {
                case VolumeKind.Tmpfs:
                    Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0755", "tmpfs", Path);
                    break;
                case VolumeKind.Bindfs:
                    Run("bindfs", _dir.Create("backing"), Path);
                    break;
                case VolumeKind.Vfat:
                    Run("truncate", "-s", size, image);
                    Run("mkfs.vfat", image);
                    Run("fusefat", "-o", "rw+", image, Path);
                    break;
                case VolumeKind.Exfat:
                    Run("truncate", "-s", size, image);
                    Run("mkfs.exfat", image);
                    _loopDevice = Run("losetup", "--find", "--show", image).StandardOutput.Trim();
                    Run("mount.exfat-fuse", _loopDevice, Path);
                    break;
                default:
                    Run("truncate", "-s", size, image);
                    string mkfs = $"mkfs.{kind.ToString().ToLowerInvariant()}";
                    Run(mkfs, [.. mkfsOptions?.Split(' ') ?? [], "-q", image]);
                    Run("mount", "-o", "loop", image, Path);
                    break;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The mounted volume's root.</summary>
    public string Path { get; }

    public VolumeKind Kind => _kind;

    /// <summary>True for the FAT-like volumes that hold no owners, modes, symlinks, FIFOs or hard links.</summary>
    public bool IsFatLike => _kind is VolumeKind.Vfat or VolumeKind.Exfat;

    public string Create(string relative)
    {
        string full = System.IO.Path.Join(Path, relative);
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose()
    {
        bool fuse = _kind is VolumeKind.Bindfs or VolumeKind.Vfat or VolumeKind.Exfat;
        // A FUSE daemon can be slow to let go right after a test's last write: retry, then detach lazily.
        for (int attempt = 0; attempt < 20 && IsMounted(); attempt++)
        {
            ChildProcess.Run(fuse ? "fusermount" : "umount", fuse ? ["-u", Path] : [Path]);
            if (IsMounted())
            {
                Thread.Sleep(100);
            }
        }

        if (IsMounted())
        {
            ChildProcess.Run("umount", ["-l", Path]);
        }

        if (_loopDevice is { Length: > 0 } device)
        {
            ChildProcess.Run("losetup", ["-d", device]);
        }

        _dir.Dispose();
    }

    private bool IsMounted() => File.ReadAllLines("/proc/self/mountinfo").Any(line => line.Split(' ')[4] == Path);

    private static ChildResult Run(string program, params string[] arguments)
    {
        var result = ChildProcess.Run(program, arguments, timeout: TimeSpan.FromMinutes(1));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed (is the Debian package installed? .ci/run installs it): {result}");
        }

        return result;
    }
}
