using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// Gives a copied entry its source's owner, extended attributes, mode and times, in the order
/// that keeps each: chown first (it clears setuid/setgid and file capabilities), then xattrs, then
/// mode, then times (every other change touches them). Everything goes through descriptors, or
/// AT_SYMLINK_NOFOLLOW for entries that cannot be opened, so a symlink is never followed.
/// What the volume cannot hold (<see cref="VolumeTraits"/>, or a refusal met on one entry) is not
/// attempted again and is counted in <see cref="VolumeLosses"/>; only a full or failing volume stops the copy.
/// </summary>
internal sealed class MetadataCopier(IPosix posix, CopyOptions options, VolumeTraits volume, VolumeLosses losses)
{
    private const int XattrBufferSize = 64 * 1024; // the largest value Linux allows

    [ThreadStatic]
    private static byte[]? t_names;

    [ThreadStatic]
    private static byte[]? t_value;

    // Apart: a workspace that refuses to set them says nothing of a home on the same device, whose
    // later entries' attributes are still lost, and counted, one by one.
    private readonly ConcurrentDictionary<ulong, bool> _sourcesWithoutXattrs = new();
    private readonly ConcurrentDictionary<ulong, bool> _destinationsWithoutXattrs = new();
    private readonly bool _allXattrNamespaces = posix.EffectiveUserId == 0;

    /// <summary>The special bits an open(2) or mkdir(2) mode cannot be trusted to set: fchmod sets them.</summary>
    public const FilePermissions SpecialBits = FilePermissions.S_ISUID | FilePermissions.S_ISGID | FilePermissions.S_ISVTX;

    public const FilePermissions PermissionBits = FilePermissions.ALLPERMS;

    public void ApplyToFile(int sourceFd, int destinationFd, in Stat source, ulong destinationDevice, string path, bool modeSetAtCreation)
    {
        bool ownerKept = ApplyOwner(destinationFd, source, path);
        CopyXattrs(sourceFd, source.st_dev, destinationFd, destinationDevice, path);
        var mode = ModeFor(source, ownerKept);

        // A successful chown(2) changes no permission bit but the special ones, which fchmod sets again here.
        if (!modeSetAtCreation || (mode & SpecialBits) != 0)
        {
            SetMode(destinationFd, mode, path);
        }
        else if (volume.Modes is { } refused)
        {
            losses.Add(LossKind.Modes, path, refused);
        }

        SetTimes(destinationFd, source, path);
    }

    public void ApplyToDirectory(int sourceFd, int destinationFd, in Stat source, ulong destinationDevice, string path)
    {
        bool ownerKept = ApplyOwner(destinationFd, source, path);
        CopyXattrs(sourceFd, source.st_dev, destinationFd, destinationDevice, path);
        SetMode(destinationFd, ModeFor(source, ownerKept), path);
        SetTimes(destinationFd, source, path);
    }

    /// <summary>For symlinks and FIFOs, which are not opened: owner and times through the name, not followed.</summary>
    public void ApplyToUnopened(int destinationDirFd, string name, in Stat source, string path)
    {
        if (NeedsChown(source) && Permitted(LossKind.Owners, volume.Owners, path))
        {
            Check(posix.LChownAt(destinationDirFd, name, source.st_uid, source.st_gid), LossKind.Owners, "set the owner of", path);
        }

        if (Permitted(LossKind.Times, volume.Times, path))
        {
            Check(posix.LUtimensAt(destinationDirFd, name, source), LossKind.Times, "set the times of", path);
        }
    }

    public void ApplyToFifo(int destinationDirFd, string name, in Stat source, string path, bool modeSetAtCreation)
    {
        ApplyToUnopened(destinationDirFd, name, source, path);
        if (!modeSetAtCreation)
        {
            // Through a descriptor, never by name (chmod follows links): a copy into a folder its user may
            // write (an image upgrade into the live home) could meet a link put in the FIFO's place. Opening
            // a FIFO to read without waiting neither blocks nor needs a writer.
            int fd = posix.OpenAt(destinationDirFd, name, OpenFlags.O_RDONLY | OpenFlags.O_NONBLOCK | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
            if (!Check(fd, LossKind.Modes, "open", path))
            {
                return;
            }

            try
            {
                int looked = posix.FStat(fd, out var made);
                if (Check(looked, LossKind.Modes, "stat", path) && (made.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFIFO)
                {
                    SetMode(fd, source.st_mode & FilePermissions.ACCESSPERMS, path);
                }
            }
            finally
            {
                posix.Close(fd);
            }
        }
        else if (volume.Modes is { } refused)
        {
            losses.Add(LossKind.Modes, path, refused);
        }
    }

    private bool NeedsChown(in Stat source) =>
        options.PreserveOwnership && (source.st_uid != posix.EffectiveUserId || source.st_gid != posix.EffectiveGroupId);

    /// <summary>True when the entry has its source's owner: the agent made it as that user, or the chown succeeded.</summary>
    private bool ApplyOwner(int destinationFd, in Stat source, string path) =>
        !NeedsChown(source)
        || (Permitted(LossKind.Owners, volume.Owners, path)
            && Check(posix.FChown(destinationFd, source.st_uid, source.st_gid), LossKind.Owners, "set the owner of", path));

    /// <summary>
    /// Never looser than the source: without its owner, an entry keeps its mode but loses setuid,
    /// setgid and sticky (a setuid program would otherwise run as the agent's user), as cp -a does.
    /// </summary>
    private static FilePermissions ModeFor(in Stat source, bool ownerKept) =>
        (source.st_mode & PermissionBits) & (ownerKept ? PermissionBits : ~SpecialBits);

    private void SetMode(int fd, FilePermissions mode, string path)
    {
        if (Permitted(LossKind.Modes, volume.Modes, path))
        {
            Check(posix.FChmod(fd, mode), LossKind.Modes, "set the mode of", path);
        }
    }

    private void SetTimes(int fd, in Stat times, string path)
    {
        if (Permitted(LossKind.Times, volume.Times, path))
        {
            Check(posix.FUtimens(fd, times), LossKind.Times, "set the times of", path);
        }
    }

    private void CopyXattrs(int sourceFd, ulong sourceDevice, int destinationFd, ulong destinationDevice, string path)
    {
        if (_sourcesWithoutXattrs.ContainsKey(sourceDevice))
        {
            return;
        }

        var names = t_names ??= new byte[XattrBufferSize];
        long length = posix.FListXattr(sourceFd, names);
        if (length <= 0)
        {
            if (length < 0 && ErrnoMeaning.XattrsUnsupported(PosixException.ErrnoOf(length)))
            {
                _sourcesWithoutXattrs.TryAdd(sourceDevice, true);
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

            if (!CopyXattr(sourceFd, destinationFd, destinationDevice, name, value, path))
            {
                return;
            }
        }
    }

    /// <summary>One extended attribute, read and set; a loss counted when it cannot be. False when the volume takes none at all (the file's others are not tried).</summary>
    private bool CopyXattr(int sourceFd, int destinationFd, ulong destinationDevice, string name, byte[] value, string path)
    {
        if (volume.ExtendedAttributes is { } refused)
        {
            losses.Add(LossKind.ExtendedAttributes, path, refused);
            return false;
        }

        if (_destinationsWithoutXattrs.ContainsKey(destinationDevice))
        {
            losses.Add(LossKind.ExtendedAttributes, path, "the volume does not support extended attributes");
            return false;
        }

        long valueLength = posix.FGetXattr(sourceFd, name, value);
        if (valueLength < 0)
        {
            losses.Add(LossKind.ExtendedAttributes, path, $"read extended attribute {name}: {PosixException.Describe(PosixException.ErrnoOf(valueLength))}");
            return true;
        }

        int set = posix.FSetXattr(destinationFd, name, value, (int)valueLength);
        if (set < 0)
        {
            var errno = PosixException.ErrnoOf(set);
            if (ErrnoMeaning.XattrsUnsupported(errno))
            {
                _destinationsWithoutXattrs.TryAdd(destinationDevice, true);
            }

            losses.Add(LossKind.ExtendedAttributes, path, $"set extended attribute {name}: {PosixException.Describe(errno)}");
        }

        return true;
    }

    // An unprivileged process may read but not set trusted.* and security.*; ACLs are its own.
    private bool ShouldCopy(string name) =>
        _allXattrNamespaces || name.StartsWith("user.", StringComparison.Ordinal) || name.StartsWith("system.posix_acl_", StringComparison.Ordinal);

    /// <summary>False, and the loss counted, when the probe found that the volume does not hold this kind of metadata.</summary>
    private bool Permitted(LossKind kind, string? refusal, string path)
    {
        if (refusal is null)
        {
            return true;
        }

        losses.Add(kind, path, refusal);
        return false;
    }

    /// <summary>True when the call succeeded; a full or failing volume stops the copy, anything else is this entry's loss.</summary>
    private bool Check(int result, LossKind kind, string what, string path)
    {
        if (result >= 0)
        {
            return true;
        }

        var errno = PosixException.ErrnoOf(result);
        if (ErrnoMeaning.StopsTheCopy(errno))
        {
            throw new DestinationWriteException(what, path, errno);
        }

        losses.Add(kind, path, $"{what}: {PosixException.Describe(errno)}");
        return false;
    }
}
