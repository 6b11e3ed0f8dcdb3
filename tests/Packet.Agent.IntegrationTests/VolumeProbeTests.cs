using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The volume probe: on real volumes (what each holds, as the end-to-end VolumeTests then see in the
/// copy), and with refusals injected for those this machine cannot mount (an NFS server's EPERM
/// for chown under root_squash, a volume without xattrs), always leaving nothing behind: no scratch
/// entry, no open descriptor.
/// </summary>
public sealed class VolumeProbeTests : IDisposable
{
    private readonly TempDirectory _dir = new("volume-probe");

    public void Dispose() => _dir.Dispose();

    private static VolumeTraits Probe(IPosix posix, string directory, bool owners = true)
    {
        int fd = Syscall.open(directory, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        Assert.True(fd >= 0, $"open {directory}");
        try
        {
            var traits = VolumeProbe.Probe(posix, fd, owners);
            Assert.Empty(Directory.GetFileSystemEntries(directory, ".packet-probe-*"));
            return traits;
        }
        finally
        {
            Syscall.close(fd);
        }
    }

    [Fact]
    public void A_local_file_system_holds_everything_to_the_nanosecond()
    {
        string directory = _dir.Create("local");

        var traits = Probe(new FaultyPosix(), directory, owners: Platform.IsRoot);

        Assert.Equal(VolumeTraits.Full, traits);
        Assert.False(traits.IsFatLike);
        Assert.Empty(OpenDescriptors.Under(directory));
    }

    [Fact]
    public void What_a_killed_probe_left_is_removed_first_and_the_users_own_entries_stay()
    {
        string directory = _dir.Create("leftovers");
        HomeFixture.Write(directory, ".packet-probe-99999", "left by a killed agent");
        Directory.CreateDirectory(Path.Join(directory, ".packet-probe-99999-dir/sub"));
        HomeFixture.Write(directory, ".packet-probe", "a user's file that only looks alike");
        HomeFixture.Write(directory, "notes", "mine");

        Probe(new FaultyPosix(), directory);

        Assert.Equal([".packet-probe", "notes"], Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("fchmod", Errno.EPERM, "chmod: Operation not permitted (EPERM)")]
    [InlineData("fchown", Errno.EPERM, "chown: Operation not permitted (EPERM)")]
    [InlineData("fsetxattr", Errno.EOPNOTSUPP, "setxattr: Operation not supported (EOPNOTSUPP)")]
    [InlineData("futimens", Errno.EPERM, "utimensat: Operation not permitted (EPERM)")]
    [InlineData("symlinkat", Errno.EPERM, "symlink: Operation not permitted (EPERM)")]
    [InlineData("mkfifoat", Errno.EPERM, "mknod: Operation not permitted (EPERM)")]
    [InlineData("linkat", Errno.EMLINK, "link: Too many links (EMLINK)")]
    public void Each_refusal_is_the_call_and_the_systems_reason_and_touches_nothing_else(string call, Errno errno, string reason)
    {
        string directory = _dir.Create("refusing");
        var posix = new FaultyPosix((c, _) => c == call ? errno : null);

        var traits = Probe(posix, directory);

        var expected = call switch
        {
            "fchmod" => VolumeTraits.Full with { Modes = reason },
            "fchown" => VolumeTraits.Full with { Owners = reason },
            "fsetxattr" => VolumeTraits.Full with { ExtendedAttributes = reason },
            "futimens" => VolumeTraits.Full with { Times = reason, ExactTimes = false },
            "symlinkat" => VolumeTraits.Full with { Symlinks = reason },
            "mkfifoat" => VolumeTraits.Full with { Fifos = reason },
            _ => VolumeTraits.Full with { HardLinks = reason },
        };
        Assert.Equal(expected, traits);
        Assert.Empty(OpenDescriptors.Under(directory));
    }

    [Fact]
    public void An_error_that_is_not_the_volume_refusing_is_left_for_the_copy_to_meet()
    {
        string directory = _dir.Create("transient");
        var posix = new FaultyPosix((call, _) => call is "fchmod" or "fchown" or "symlinkat" or "mkfifoat" or "linkat" ? Errno.ENOSPC : null);

        Assert.Equal(VolumeTraits.Full, Probe(posix, directory));
    }

    [Fact]
    public void Owners_are_not_probed_when_the_copy_keeps_none()
    {
        string directory = _dir.Create("no-owners");
        var posix = new FaultyPosix((call, _) => call == "fchown" ? Errno.EPERM : null);

        Assert.Null(Probe(posix, directory, owners: false).Owners);
    }

    [Fact]
    public void A_volume_that_accepts_a_mode_or_owner_but_shows_another_is_named_by_what_it_shows()
    {
        string directory = _dir.Create("showing");
        var posix = new FaultyPosix { Shows = s => s with { st_mode = (s.st_mode & ~FilePermissions.ALLPERMS) | FilePermissions.ACCESSPERMS, st_uid = 0, st_gid = 0, st_mtime_nsec = 0 } };

        var traits = Probe(posix, directory);

        Assert.Equal("the volume shows mode 777 whatever is set", traits.Modes);
        Assert.Equal(Platform.IsRoot ? "the volume shows every entry as owned by 0:0" : null, traits.Owners);
        Assert.Null(traits.Times);
        Assert.False(traits.ExactTimes, "times shown without their nanoseconds are not exact");
    }

    [Fact]
    public void An_owner_shown_half_changed_is_not_kept()
    {
        string directory = _dir.Create("half-owner");
        var posix = new FaultyPosix { Shows = s => s with { st_gid = 0 } };

        var traits = Probe(posix, directory);

        Assert.Equal(Platform.IsRoot ? "the volume shows every entry as owned by 1:0" : null, traits.Owners);
    }

    [Fact]
    public void A_directory_where_nothing_can_be_created_teaches_nothing_and_the_copy_meets_each_refusal()
    {
        string directory = _dir.Create("read-only");
        var posix = new FaultyPosix((call, name) => call == "openat" && name!.StartsWith(".packet-probe-", StringComparison.Ordinal) ? Errno.EROFS : null);

        Assert.Equal(VolumeTraits.Full, Probe(posix, directory));
    }

    [Theory]
    [InlineData("mkdirat", "-dir")]
    [InlineData("openat", "-dir")]
    [InlineData("mkdirat", "sub")]
    [InlineData("openat", "sub")]
    [InlineData("openat", "file")]
    [InlineData("renameat", "-moved")]
    [InlineData("openat", "-moved")]
    public void A_directory_rename_probe_that_cannot_be_carried_out_claims_no_loss_and_leaves_nothing(string call, string nameEnd)
    {
        string directory = _dir.Create("rename-probe");
        // Only the probe's own call fails: removing the scratch entries afterwards must still work.
        int failures = 0;
        var posix = new FaultyPosix((c, name) => c == call && name is not null && name.EndsWith(nameEnd, StringComparison.Ordinal) && Interlocked.Increment(ref failures) == 1 ? Errno.EACCES : null);

        var traits = Probe(posix, directory);

        Assert.Null(traits.DirectoryRenames);
        Assert.True(failures >= 1, "the probe never made the call that was to fail");
        Assert.Empty(OpenDescriptors.Under(directory));
    }

    [RootTheory]
    [InlineData(VolumeKind.Ext4)]
    [InlineData(VolumeKind.Xfs)]
    [InlineData(VolumeKind.Btrfs)]
    [InlineData(VolumeKind.Tmpfs)]
    public void Block_and_memory_volumes_hold_everything(VolumeKind kind)
    {
        Require.Root();
        using var volume = new TestVolume(kind);

        Assert.Equal(VolumeTraits.Full, Probe(new FaultyPosix(), volume.Path));
    }

    [RootFact]
    public void A_fuse_pass_through_holds_everything_but_is_not_made_durable_by_syncfs()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Bindfs);

        var traits = Probe(new FaultyPosix(), volume.Path);

        Assert.False(traits.FlushedBySyncFs);
        Assert.False(traits.IsFatLike);
        Assert.Null(traits.DirectoryRenames);
    }

    [RootFact]
    public void Fat_through_fusefat_holds_no_owners_modes_links_or_fifos_and_empties_moved_directories()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat, size: "64M");

        var traits = Probe(new FaultyPosix(), volume.Path);

        Assert.True(traits.IsFatLike);
        Assert.False(traits.ExactTimes);
        Assert.False(traits.FlushedBySyncFs);
        Assert.NotNull(traits.Owners);
        Assert.NotNull(traits.Fifos);
        Assert.Equal("a directory moved to another directory arrives empty", traits.DirectoryRenames);
        Assert.Empty(OpenDescriptors.Under(volume.Path));
    }

    [RootFact]
    public void Exfat_shows_every_mode_as_777_and_keeps_directories_it_moves()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Exfat, size: "64M");

        var traits = Probe(new FaultyPosix(), volume.Path);

        Assert.True(traits.IsFatLike);
        Assert.Equal("the volume shows mode 777 whatever is set", traits.Modes);
        Assert.Null(traits.DirectoryRenames);
        Assert.False(traits.ExactTimes);
    }
}
