using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// Gives a copied entry its source's owner, extended attributes, mode and times, in the order
/// that keeps each: chown first (it clears setuid/setgid and file capabilities), then xattrs, then
/// mode, then times (every other change touches them). Everything goes through descriptors, or
/// AT_SYMLINK_NOFOLLOW for entries that cannot be opened, so a symlink is never followed.
/// </summary>
internal sealed class MetadataCopier(IPosix posix, CopyOptions options, Action<ProblemKind, string, string> onProblem)
{
    private const int XattrBufferSize = 64 * 1024; // the largest value Linux allows

    [ThreadStatic]
    private static byte[]? t_names;

    [ThreadStatic]
    private static byte[]? t_value;

    private readonly ConcurrentDictionary<ulong, bool> _devicesWithoutXattrs = new();
    private readonly bool _allXattrNamespaces = posix.EffectiveUserId == 0;

    /// <summary>The special bits an open(2) or mkdir(2) mode cannot be trusted to set: fchmod sets them.</summary>
    public const FilePermissions SpecialBits = FilePermissions.S_ISUID | FilePermissions.S_ISGID | FilePermissions.S_ISVTX;

    public const FilePermissions PermissionBits = FilePermissions.ALLPERMS;

    public void ApplyToFile(int sourceFd, int destinationFd, in Stat source, ulong destinationDevice, string path, bool modeSetAtCreation)
    {
        bool chowned = ApplyOwner(destinationFd, source, path);
        CopyXattrs(sourceFd, source.st_dev, destinationFd, destinationDevice, path);
        var mode = source.st_mode & PermissionBits;
        if (!modeSetAtCreation || chowned || (mode & SpecialBits) != 0)
        {
            Check(posix.FChmod(destinationFd, mode), "set the mode of", path);
        }

        Check(posix.FUtimens(destinationFd, source), "set the times of", path);
    }

    public void ApplyToDirectory(int sourceFd, int destinationFd, in Stat source, ulong destinationDevice, string path)
    {
        ApplyOwner(destinationFd, source, path);
        CopyXattrs(sourceFd, source.st_dev, destinationFd, destinationDevice, path);
        Check(posix.FChmod(destinationFd, source.st_mode & PermissionBits), "set the mode of", path);
        Check(posix.FUtimens(destinationFd, source), "set the times of", path);
    }

    /// <summary>For symlinks and FIFOs, which are not opened: owner and times through the name, not followed.</summary>
    public void ApplyToUnopened(int destinationDirFd, string name, in Stat source, string path)
    {
        if (NeedsChown(source))
        {
            Check(posix.LChownAt(destinationDirFd, name, source.st_uid, source.st_gid), "set the owner of", path);
        }

        Check(posix.LUtimensAt(destinationDirFd, name, source), "set the times of", path);
    }

    public void ApplyToFifo(int destinationDirFd, string name, in Stat source, string path, bool modeSetAtCreation)
    {
        ApplyToUnopened(destinationDirFd, name, source, path);
        if (!modeSetAtCreation)
        {
            // By name, as a FIFO is not opened: the entry was just made, and nothing else writes to the copy while the seed holds the workspace lock.
            Check(posix.ChmodAt(destinationDirFd, name, source.st_mode & FilePermissions.ACCESSPERMS), "set the mode of", path);
        }
    }

    private bool NeedsChown(in Stat source) =>
        options.PreserveOwnership && (source.st_uid != posix.EffectiveUserId || source.st_gid != posix.EffectiveGroupId);

    private bool ApplyOwner(int destinationFd, in Stat source, string path)
    {
        if (!NeedsChown(source))
        {
            return false;
        }

        Check(posix.FChown(destinationFd, source.st_uid, source.st_gid), "set the owner of", path);
        return true;
    }

    private void CopyXattrs(int sourceFd, ulong sourceDevice, int destinationFd, ulong destinationDevice, string path)
    {
        if (_devicesWithoutXattrs.ContainsKey(sourceDevice) || _devicesWithoutXattrs.ContainsKey(destinationDevice))
        {
            return;
        }

        var names = t_names ??= new byte[XattrBufferSize];
        long length = posix.FListXattr(sourceFd, names);
        if (length <= 0)
        {
            if (length < 0 && IsUnsupported(PosixException.ErrnoOf(length)))
            {
                _devicesWithoutXattrs.TryAdd(sourceDevice, true);
            }

            return;
        }

        var value = t_value ??= new byte[XattrBufferSize];
        int start = 0;
        for (int i = 0; i < length; i++)
        {
            if (names[i] != 0)
            {
                continue;
            }

            string name = NativeName.FromBytes(names.AsSpan(start, i - start));
            start = i + 1;
            if (!ShouldCopy(name))
            {
                continue;
            }

            long valueLength = posix.FGetXattr(sourceFd, name, value);
            if (valueLength < 0)
            {
                onProblem(ProblemKind.MetadataNotPreserved, path, $"read extended attribute {name}: {PosixException.Describe(PosixException.ErrnoOf(valueLength))}");
                continue;
            }

            int set = posix.FSetXattr(destinationFd, name, value, (int)valueLength);
            if (set < 0)
            {
                var errno = PosixException.ErrnoOf(set);
                if (IsUnsupported(errno))
                {
                    // A volume without xattr support is not an error (contract); stop asking it.
                    _devicesWithoutXattrs.TryAdd(destinationDevice, true);
                    return;
                }

                onProblem(ProblemKind.MetadataNotPreserved, path, $"set extended attribute {name}: {PosixException.Describe(errno)}");
            }
        }
    }

    // An unprivileged process may read but not set trusted.* and security.*; ACLs are its own.
    private bool ShouldCopy(string name) =>
        _allXattrNamespaces || name.StartsWith("user.", StringComparison.Ordinal) || name.StartsWith("system.posix_acl_", StringComparison.Ordinal);

    private static bool IsUnsupported(Errno errno) => errno is Errno.EOPNOTSUPP or Errno.ENOSYS;

    private void Check(int result, string what, string path)
    {
        if (result >= 0)
        {
            return;
        }

        var errno = PosixException.ErrnoOf(result);
        if (DestinationWriteException.IsFatal(errno))
        {
            throw new DestinationWriteException(what, path, errno);
        }

        onProblem(ProblemKind.MetadataNotPreserved, path, $"{what}: {PosixException.Describe(errno)}");
    }
}
