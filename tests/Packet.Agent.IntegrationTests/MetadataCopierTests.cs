using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// An entry's owner, extended attributes, mode and times given to its copy on the real file system
/// (ext4 under /tmp, which holds them all): what is set, what is left alone, and how each refusal
/// (injected where ext4 would not refuse: NFS's EPERM, FUSE's EOPNOTSUPP) is counted as a loss.
/// </summary>
public sealed class MetadataCopierTests : IDisposable
{
    private readonly TempDirectory _dir = new("metadata");

    public MetadataCopierTests()
    {
        HomeFixture.Write(_dir.Path, "source", "data\n");
        HomeFixture.Chmod(_dir.Path, "source", "640");
        HomeFixture.Check(Syscall.utimensat(Syscall.AT_FDCWD, Source, [new Timespec { tv_sec = 1_600_000_000, tv_nsec = 123_456_789 }, new Timespec { tv_sec = 1_500_000_000, tv_nsec = 987_654_321 }], AtFlags.AT_SYMLINK_NOFOLLOW));
    }

    private string Source => _dir["source"];

    public void Dispose() => _dir.Dispose();

    private sealed record Outcome(Stat Copy, VolumeLosses Losses, FaultyPosix Posix);

    private static Stat LStat(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat;
    }

    private static string[] Xattrs(string path)
    {
        HomeFixture.Check((int)Syscall.llistxattr(path, out string[] names));
        return [.. names.Order(StringComparer.Ordinal)];
    }

    private static string Xattr(string path, string name)
    {
        HomeFixture.Check((int)Syscall.lgetxattr(path, name, out byte[] value));
        return System.Text.Encoding.UTF8.GetString(value);
    }

    private Outcome ApplyToFile(FaultyPosix? posix = null, VolumeTraits? volume = null, bool preserveOwnership = true, bool modeSetAtCreation = false, string copy = "copy", MetadataCopier? copier = null, VolumeLosses? losses = null)
    {
        posix ??= new FaultyPosix();
        losses ??= new VolumeLosses();
        int sourceFd = Syscall.open(Source, OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC);
        // As the copy creates a file: with the source's mode (special bits aside) where the creation keeps it.
        var created = modeSetAtCreation ? LStat(Source).st_mode & MetadataCopier.PermissionBits & ~MetadataCopier.SpecialBits : FilePermissions.S_IRUSR | FilePermissions.S_IWUSR;
        int destinationFd = Syscall.open(_dir[copy], OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_CLOEXEC, created);
        try
        {
            HomeFixture.Check(sourceFd);
            HomeFixture.Check(destinationFd);
            HomeFixture.Check(Syscall.fstat(sourceFd, out var source));
            HomeFixture.Check(Syscall.fstat(destinationFd, out var destination));
            copier ??= new MetadataCopier(posix, new CopyOptions { PreserveOwnership = preserveOwnership }, volume ?? VolumeTraits.Full, losses);
            copier.ApplyToFile(sourceFd, destinationFd, source, destination.st_dev, "home/" + copy, modeSetAtCreation);
        }
        finally
        {
            Syscall.close(sourceFd);
            Syscall.close(destinationFd);
        }

        return new Outcome(LStat(_dir[copy]), losses, posix);
    }

    private static (long Seconds, long Nanoseconds) Mtime(Stat stat) => (stat.st_mtime, stat.st_mtime_nsec);

    /// <summary>A FIFO of mode 0640 copied as the copy makes one: created 0600, then given its source's mode and times.</summary>
    private (Stat Copy, VolumeLosses Losses) ApplyToFifo(FaultyPosix posix)
    {
        HomeFixture.Check(Syscall.mkfifo(_dir["fifo"], FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP));
        HomeFixture.Check(Syscall.mkfifo(_dir["fifo-copy"], FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        var losses = new VolumeLosses();
        int folder = Syscall.open(_dir.Path, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        try
        {
            HomeFixture.Check(folder);
            new MetadataCopier(posix, new CopyOptions { PreserveOwnership = true }, VolumeTraits.Full, losses).ApplyToFifo(folder, "fifo-copy", LStat(_dir["fifo"]), "home/fifo", modeSetAtCreation: false);
        }
        finally
        {
            Syscall.close(folder);
        }

        return (LStat(_dir["fifo-copy"]), losses);
    }

    [Fact]
    public void A_fifos_copy_gets_its_mode_through_a_descriptor_without_waiting_for_a_writer()
    {
        var (copy, losses) = ApplyToFifo(new FaultyPosix());

        Assert.Equal(FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP, copy.st_mode & FilePermissions.ALLPERMS);
        Assert.Equal(Mtime(LStat(_dir["fifo"])), Mtime(copy));
        Assert.Equal(0, losses.Total);
    }

    [Fact]
    public void A_link_put_in_a_fifos_place_before_its_mode_is_set_is_not_followed()
    {
        string canary = _dir["canary"];
        File.WriteAllText(canary, "root's\n");
        HomeFixture.Chmod(_dir.Path, "canary", "600");
        // A user who may write the destination (an upgrade into the live home) swaps the new FIFO for a link.
        var posix = new FaultyPosix
        {
            BeforeOpen = name =>
            {
                if (name == "fifo-copy" && File.Exists(_dir["fifo-copy"]))
                {
                    File.Delete(_dir["fifo-copy"]);
                    HomeFixture.Check(Syscall.symlink(canary, _dir["fifo-copy"]));
                }
            },
        };

        var (_, losses) = ApplyToFifo(posix);

        Assert.Equal("0600", SafePath.Mode(LStat(canary)));
        var lost = Assert.Single(losses.Summaries());
        Assert.Equal((LossKind.Modes, "home/fifo"), (lost.Kind, lost.ExamplePath));
        Assert.StartsWith("open: ", lost.Reason, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_file_gets_its_sources_owner_mode_times_and_extended_attributes()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");
        HomeFixture.SetXattr(_dir.Path, "source", "user.second", "two, longer");
        HomeFixture.SetXattr(_dir.Path, "source", "trusted.third", "3");
        HomeFixture.Check(Syscall.chown(Source, Platform.StrangerUid, Platform.StrangerGid));

        var outcome = ApplyToFile();

        Assert.Equal((Platform.StrangerUid, Platform.StrangerGid), (outcome.Copy.st_uid, outcome.Copy.st_gid));
        Assert.Equal("640", Convert.ToString((int)(outcome.Copy.st_mode & MetadataCopier.PermissionBits), 8));
        Assert.Equal(((long)1_500_000_000, (long)987_654_321), Mtime(outcome.Copy));
        Assert.Equal(["trusted.third", "user.first", "user.second"], Xattrs(_dir["copy"]));
        Assert.Equal(("one", "two, longer", "3"), (Xattr(_dir["copy"], "user.first"), Xattr(_dir["copy"], "user.second"), Xattr(_dir["copy"], "trusted.third")));
        Assert.Equal(0, outcome.Losses.Total);
    }

    [RootFact]
    public void An_extended_attribute_with_an_empty_value_is_copied_empty()
    {
        HomeFixture.Check(Syscall.lsetxattr(Source, "user.flag", []));

        var outcome = ApplyToFile();

        Assert.Equal(["user.flag"], Xattrs(_dir["copy"]));
        Assert.Equal(0, outcome.Losses.Total);
    }

    [RootFact]
    public void Without_preserving_owners_the_copy_stays_the_agents_and_no_chown_is_made()
    {
        HomeFixture.Check(Syscall.chown(Source, Platform.StrangerUid, Platform.StrangerGid));

        var outcome = ApplyToFile(preserveOwnership: false);

        Assert.Equal((0u, 0u), (outcome.Copy.st_uid, outcome.Copy.st_gid));
        Assert.Equal(0, outcome.Posix.CallsOf("fchown"));
    }

    [RootTheory]
    [InlineData(0u, 0u, 0)]
    [InlineData(Platform.StrangerUid, 0u, 1)]
    [InlineData(0u, Platform.StrangerGid, 1)]
    public void A_chown_is_made_only_when_the_owner_or_the_group_differs_from_the_agents(uint uid, uint gid, int chowns)
    {
        HomeFixture.Check(Syscall.chown(Source, uid, gid));

        var outcome = ApplyToFile();

        Assert.Equal((uid, gid, chowns), (outcome.Copy.st_uid, outcome.Copy.st_gid, outcome.Posix.CallsOf("fchown")));
    }

    [RootFact]
    public void A_setuid_program_keeps_its_bit_with_its_owner_and_loses_it_without()
    {
        HomeFixture.Check(Syscall.chown(Source, Platform.StrangerUid, Platform.StrangerGid));
        HomeFixture.Chmod(_dir.Path, "source", "4755");

        var kept = ApplyToFile(modeSetAtCreation: true, copy: "kept");
        var lost = ApplyToFile(new FaultyPosix((call, _) => call == "fchown" ? Errno.EPERM : null), modeSetAtCreation: true, copy: "lost");

        Assert.Equal("4755", Convert.ToString((int)(kept.Copy.st_mode & MetadataCopier.PermissionBits), 8));
        Assert.Equal("755", Convert.ToString((int)(lost.Copy.st_mode & MetadataCopier.PermissionBits), 8));
        Assert.Equal(1, lost.Losses[LossKind.Owners]);
        Assert.Equal(new LossSummary(LossKind.Owners, 1, "home/lost", "set the owner of: Operation not permitted (EPERM)"), lost.Losses.Summaries().Single());
    }

    [RootFact]
    public void A_mode_set_at_creation_is_not_set_again()
    {
        HomeFixture.Check(Syscall.chown(Source, Platform.StrangerUid, Platform.StrangerGid));

        var outcome = ApplyToFile(modeSetAtCreation: true);

        Assert.Equal((1, 0), (outcome.Posix.CallsOf("fchown"), outcome.Posix.CallsOf("fchmod")));
    }

    [Fact]
    public void A_mode_not_set_at_creation_is_set()
    {
        var outcome = ApplyToFile(modeSetAtCreation: false);

        Assert.Equal("640", Convert.ToString((int)(outcome.Copy.st_mode & MetadataCopier.PermissionBits), 8));
    }

    [Fact]
    public void What_the_probe_found_the_volume_cannot_hold_is_not_attempted_and_is_counted()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");
        var volume = new VolumeTraits { Modes = "modes: no", Times = "times: no", ExtendedAttributes = "xattrs: no", Owners = "owners: no" };

        var outcome = ApplyToFile(volume: volume, modeSetAtCreation: true);

        Assert.Equal((0, 0, 0, 0), (outcome.Posix.CallsOf("fchmod"), outcome.Posix.CallsOf("futimens"), outcome.Posix.CallsOf("fsetxattr"), outcome.Posix.CallsOf("fchown")));
        Assert.Empty(Xattrs(_dir["copy"]));
        Assert.Equal(
            [
                new LossSummary(LossKind.Modes, 1, "home/copy", "modes: no"),
                new LossSummary(LossKind.Times, 1, "home/copy", "times: no"),
                new LossSummary(LossKind.ExtendedAttributes, 1, "home/copy", "xattrs: no"),
            ],
            outcome.Losses.Summaries());
    }

    [Fact]
    public void A_refused_mode_or_time_is_this_entrys_loss_and_the_rest_is_still_set()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");

        var outcome = ApplyToFile(new FaultyPosix((call, _) => call is "fchmod" or "futimens" ? Errno.EPERM : null));

        Assert.Equal(["user.first"], Xattrs(_dir["copy"]));
        Assert.Equal(
            [
                new LossSummary(LossKind.Modes, 1, "home/copy", "set the mode of: Operation not permitted (EPERM)"),
                new LossSummary(LossKind.Times, 1, "home/copy", "set the times of: Operation not permitted (EPERM)"),
            ],
            outcome.Losses.Summaries());
    }

    [Theory]
    [InlineData("fchmod", Errno.EIO)]
    [InlineData("futimens", Errno.ENOSPC)]
    public void A_failing_or_full_volume_stops_the_copy(string call, Errno errno)
    {
        var failure = Assert.Throws<DestinationWriteException>(() => ApplyToFile(new FaultyPosix((made, _) => made == call ? errno : null)));

        Assert.Equal(errno, failure.Errno);
    }

    [Fact]
    public void An_attribute_that_cannot_be_read_is_lost_alone()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");
        HomeFixture.SetXattr(_dir.Path, "source", "user.second", "two");

        var outcome = ApplyToFile(new FaultyPosix((call, name) => call == "fgetxattr" && name == "user.first" ? Errno.EIO : null));

        Assert.Equal(["user.second"], Xattrs(_dir["copy"]));
        Assert.Equal(new LossSummary(LossKind.ExtendedAttributes, 1, "home/copy", "read extended attribute user.first: Input/output error (EIO)"), outcome.Losses.Summaries().Single());
    }

    [Fact]
    public void An_attribute_the_volume_refuses_is_lost_alone()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");
        HomeFixture.SetXattr(_dir.Path, "source", "user.second", "two");

        var outcome = ApplyToFile(new FaultyPosix((call, name) => call == "fsetxattr" && name == "user.first" ? Errno.EPERM : null));

        Assert.Equal(["user.second"], Xattrs(_dir["copy"]));
        Assert.Equal(new LossSummary(LossKind.ExtendedAttributes, 1, "home/copy", "set extended attribute user.first: Operation not permitted (EPERM)"), outcome.Losses.Summaries().Single());
    }

    [Fact]
    public void A_workspace_without_extended_attributes_is_learned_from_the_first_refusal_on_the_homes_device_as_well()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "user.first", "one");
        var losses = new VolumeLosses();
        var posix = new FaultyPosix((call, _) => call == "fsetxattr" ? Errno.EOPNOTSUPP : null);
        var copier = new MetadataCopier(posix, new CopyOptions(), VolumeTraits.Full, losses);

        ApplyToFile(posix, copy: "first", copier: copier, losses: losses);
        ApplyToFile(posix, copy: "second", copier: copier, losses: losses);

        Assert.Equal(1, posix.CallsOf("fsetxattr"));
        Assert.Equal(2, losses[LossKind.ExtendedAttributes]);
        Assert.Equal(new LossSummary(LossKind.ExtendedAttributes, 2, "home/first", "set extended attribute user.first: Operation not supported (EOPNOTSUPP)"), losses.Summaries().Single());
    }

    [Theory]
    [InlineData(Errno.EOPNOTSUPP, 1)]
    [InlineData(Errno.ENOSYS, 1)]
    [InlineData(Errno.EIO, 2)]
    public void A_home_without_extended_attributes_is_not_listed_again(Errno errno, int listings)
    {
        var losses = new VolumeLosses();
        var posix = new FaultyPosix((call, _) => call == "flistxattr" ? errno : null);
        var copier = new MetadataCopier(posix, new CopyOptions(), VolumeTraits.Full, losses);

        ApplyToFile(posix, copy: "first", copier: copier, losses: losses);
        ApplyToFile(posix, copy: "second", copier: copier, losses: losses);

        Assert.Equal((listings, 0L), (posix.CallsOf("flistxattr"), losses.Total));
    }

    [RootFact]
    public void An_agent_that_is_not_root_copies_user_attributes_and_acls_and_leaves_the_privileged_namespaces()
    {
        HomeFixture.SetXattr(_dir.Path, "source", "trusted.note", "root only");
        HomeFixture.SetXattr(_dir.Path, "source", "user.note", "anyone");

        var outcome = ApplyToFile(new FaultyPosix { SeenAsUser = Platform.StrangerUid }, preserveOwnership: false);

        Assert.Equal(["user.note"], Xattrs(_dir["copy"]));
        Assert.Equal(0, outcome.Losses.Total);
    }

    [Fact]
    public void A_symlink_gets_its_times_by_name_and_is_never_followed()
    {
        HomeFixture.Write(_dir.Path, "target", "t\n");
        var targetBefore = LStat(_dir["target"]);
        HomeFixture.Symlink(_dir.Path, "target", "link");
        int dirFd = Syscall.open(_dir.Path, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        try
        {
            var losses = new VolumeLosses();
            new MetadataCopier(new FaultyPosix(), new CopyOptions { PreserveOwnership = false }, new VolumeTraits { Owners = "owners: no" }, losses)
                .ApplyToUnopened(dirFd, "link", LStat(Source), "home/link");

            Assert.Equal(((long)1_500_000_000, (long)987_654_321), Mtime(LStat(_dir["link"])));
            Assert.Equal(Mtime(targetBefore), Mtime(LStat(_dir["target"])));
            Assert.Equal(0, losses.Total); // no owner to set, so none lost
        }
        finally
        {
            Syscall.close(dirFd);
        }
    }
}
