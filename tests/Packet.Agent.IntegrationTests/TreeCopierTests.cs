using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The copy engine on a real file system, held against cp -a.</summary>
public sealed class TreeCopierTests : IDisposable
{
    private readonly TempDirectory _dir = new("copier");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(0, false)]
    [InlineData(4, false)]
    [InlineData(0, true)]
    [InlineData(4, true)]
    public void I_copy_a_realistic_home_exactly_as_cp_a_does_except_sockets_and_devices(int workers, bool listingsWithoutTypes)
    {
        string home = _dir["home"];
        HomeFixture.Build(home, rootOnlyEntries: Platform.IsRoot);
        var source = TreeSnapshot.Take(home);
        Directory.CreateDirectory(_dir["by-cp"]);
        ChildProcess.MustSucceed("cp", "-a", home + "/.", _dir["by-cp"]);

        var report = CopyHarness.Copy(home, _dir["by-agent"], new FaultyPosix { UnknownTypes = listingsWithoutTypes }, workers: workers);

        var ours = TreeSnapshot.Take(_dir["by-agent"]);
        var theirs = TreeSnapshot.Take(_dir["by-cp"]);
        var notCopied = source.Entries.Values
            .Where(e => e.Type is FilePermissions.S_IFSOCK or FilePermissions.S_IFCHR or FilePermissions.S_IFBLK)
            .Select(e => e.Path).ToHashSet();
        Assert.NotEmpty(notCopied);
        Assert.Empty(ours.DifferencesFrom(theirs, include: path => !notCopied.Contains(path)));
        Assert.Empty(ours.DifferencesFrom(source, include: path => !notCopied.Contains(path)));
        Assert.All(notCopied, path => Assert.False(ours.Entries.ContainsKey(path), $"{path} should have been skipped"));
        Assert.Null(report.FatalError);
        Assert.Equal(1, report.SkippedSockets);
        Assert.Equal(Platform.IsRoot ? 1 : 0, report.SkippedDevices);
        Assert.Equal(2, report.HardLinks);
        Assert.Equal(5, report.Symlinks);
        Assert.Equal(1, report.Fifos);
        Assert.Equal(0, report.SkippedUnreadable);
    }

    [Fact]
    public void I_read_the_umask_a_child_process_inherits_without_changing_it()
    {
        var before = ChildProcess.Shell("umask");

        var mask = new FaultyPosix().ReadFileCreationMask();

        Assert.Equal(Convert.ToUInt32(before.StandardOutput.Trim(), 8), (uint?)mask);
        Assert.Equal(before.StandardOutput, ChildProcess.Shell("umask").StandardOutput);
    }

    [Fact]
    public void I_set_modes_the_umask_would_trim_even_when_the_umask_cannot_be_read()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, "group-writable", "x", mode: "664");
        HomeFixture.Write(home, "world-writable", "y", mode: "666");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(home, "pipe"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        HomeFixture.Chmod(home, "pipe", "666");
        HomeFixture.FixTimes(home);

        CopyHarness.Copy(home, _dir["copy"], new FaultyPosix { CreationMaskUnknown = true });

        Assert.Empty(TreeSnapshot.Take(_dir["copy"]).DifferencesFrom(TreeSnapshot.Take(home), Ignore.RootTimes));
    }

    [Fact]
    public void I_keep_names_byte_for_byte_even_when_they_are_not_utf8()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, HomeFixture.NonUtf8Name, "x");
        HomeFixture.Write(home, HomeFixture.NewlineName, "y");

        CopyHarness.Copy(home, _dir["copy"]);

        var names = TreeSnapshot.Take(_dir["copy"]).Entries.Keys.Where(k => k.Length > 0).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { HomeFixture.NonUtf8Name, HomeFixture.NewlineName }.Order(StringComparer.Ordinal), names);
        var bytes = Mono.Unix.UnixEncoding.Instance.GetBytes(HomeFixture.NonUtf8Name);
        Assert.Equal(new byte[] { (byte)'b', (byte)'a', (byte)'d', (byte)'-', 0xff, (byte)'-', 0xc0, 0xaf }, bytes[..8]);
    }

    [Fact]
    public void I_skip_an_entry_I_cannot_read_name_it_and_still_finish_its_directory()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, "dir/secret", "no");
        HomeFixture.Write(home, "dir/open", "yes");
        HomeFixture.Chmod(home, "dir", "750");
        HomeFixture.FixTimes(home);
        var problems = new List<CopyProblem>();
        var posix = new FaultyPosix((call, name) => call == "openat" && name == "secret" ? Errno.EACCES : null);

        var report = CopyHarness.Copy(home, _dir["copy"], posix, problems: problems);

        Assert.Equal(1, report.SkippedUnreadable);
        var problem = Assert.Single(problems);
        Assert.Equal("dir/secret", problem.Path);
        Assert.Contains("EACCES", problem.Detail);
        var copy = TreeSnapshot.Take(_dir["copy"]);
        Assert.False(copy.Entries.ContainsKey("dir/secret"));
        Assert.True(copy.Entries.ContainsKey("dir/open"));
        Assert.Equal((FilePermissions)Convert.ToUInt32("750", 8), copy["dir"].Mode);
        Assert.Equal(HomeFixture.OldTime.tv_nsec, copy["dir"].MtimeNanoseconds);
    }

    [Fact]
    public void I_remove_the_partial_copy_of_a_file_whose_reading_fails_midway_and_name_it()
    {
        string home = _dir.Create("home");
        HomeFixture.WriteBytes(home, "failing", HomeFixture.RandomBytes(3 << 20, seed: 3));
        HomeFixture.Write(home, "fine", "fine");
        var problems = new List<CopyProblem>();
        int reads = 0;
        // A disk error after the first MiB: the in-kernel copy gives EIO, read/write names the side.
        var posix = new FaultyPosix((call, name) => (call, name) switch
        {
            ("copy_file_range", "failing") => Errno.EIO,
            ("pread", "failing") when Interlocked.Increment(ref reads) > 1 => Errno.EIO,
            _ => null,
        });

        var report = CopyHarness.Copy(home, _dir["copy"], posix, workers: 0, problems: problems);

        Assert.Null(report.FatalError);
        Assert.Equal(new CopyProblem(ProblemKind.Unreadable, "failing", "read: Input/output error (EIO); left out"), problems.Single());
        Assert.Equal((1, 1L), (report.SkippedUnreadable, report.Files));
        Assert.False(File.Exists(Path.Join(_dir["copy"], "failing")), "a partial copy must not stay");
        Assert.Equal("fine", File.ReadAllText(Path.Join(_dir["copy"], "fine")));
    }

    [Fact]
    public void I_count_the_bytes_and_the_space_of_what_I_copied()
    {
        string home = _dir.Create("home");
        HomeFixture.WriteBytes(home, "a", HomeFixture.RandomBytes(10_000, seed: 1));
        HomeFixture.WriteSparse(home, "sparse", size: 8 << 20, dataAt: [0]);

        var report = CopyHarness.Copy(home, _dir["copy"], workers: 0);

        Assert.Equal(10_000 + (8L << 20), report.Bytes);
        HomeFixture.Check(Syscall.lstat(Path.Join(home, "a"), out var a));
        HomeFixture.Check(Syscall.lstat(Path.Join(home, "sparse"), out var sparse));
        Assert.Equal((a.st_blocks + sparse.st_blocks) * 512, report.AllocatedBytes);
        Assert.Equal(2, report.Files);
    }

    [Fact]
    public void I_skip_an_unlistable_directory_and_copy_everything_beside_it()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, "locked/inside", "no");
        HomeFixture.Write(home, "fine/inside", "yes");
        var posix = new FaultyPosix((call, name) => call == "openat" && name == "locked" ? Errno.EACCES : null);

        var report = CopyHarness.Copy(home, _dir["copy"], posix);

        Assert.Equal(1, report.SkippedUnreadable);
        var copy = TreeSnapshot.Take(_dir["copy"]);
        Assert.False(copy.Entries.ContainsKey("locked"));
        Assert.True(copy.Entries.ContainsKey("fine/inside"));
    }

    [Fact]
    public void I_stop_the_whole_copy_when_the_destination_is_full_and_say_so()
    {
        string home = _dir.Create("home");
        for (int i = 0; i < 50; i++)
        {
            HomeFixture.Write(home, $"d{i % 5}/f{i}", new string('x', 1000));
        }

        var posix = new FaultyPosix((call, _) => call is "copy_file_range" ? Errno.ENOSPC : null);

        var report = CopyHarness.Copy(home, _dir["copy"], posix);

        Assert.True(report.OutOfSpace);
        Assert.Contains("ENOSPC", report.FatalError);
        Assert.True(report.Files < 50);
    }

    [Fact]
    public void I_fall_back_to_sendfile_and_then_read_write_when_in_kernel_copies_are_refused()
    {
        string home = _dir.Create("home");
        HomeFixture.WriteBytes(home, "a.bin", HomeFixture.RandomBytes(300_000, 1));
        HomeFixture.WriteBytes(home, "b.bin", HomeFixture.RandomBytes(5_000, 2));
        HomeFixture.FixTimes(home);
        var posix = new FaultyPosix((call, _) => call switch
        {
            "copy_file_range" => Errno.EXDEV,
            "sendfile" => Errno.EINVAL,
            _ => null,
        });

        CopyHarness.Copy(home, _dir["copy"], posix, workers: 0);

        Assert.Empty(TreeSnapshot.Take(_dir["copy"]).DifferencesFrom(TreeSnapshot.Take(home), Ignore.RootTimes));
    }

    [Fact]
    public void I_resume_an_interrupted_copy_keeping_complete_files_and_redoing_partial_ones()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, "done.txt", "complete content");
        HomeFixture.Write(home, "partial.txt", "the whole file");
        HomeFixture.FixTimes(home);
        string staging = _dir.Create("staging");
        // A previous run finished done.txt (same size and mtime; the content differs so keeping it shows)
        // and died inside partial.txt.
        HomeFixture.Write(staging, "done.txt", "COMPLETE CONTENT");
        HomeFixture.Write(staging, "partial.txt", "the w");
        var done = new Timespec[] { HomeFixture.FutureAccess, HomeFixture.OldTime };
        HomeFixture.Check(Syscall.utimensat(-100, Path.Join(staging, "done.txt"), done, 0));

        var report = CopyHarness.Copy(home, staging);

        Assert.Equal(1, report.ResumedFiles);
        Assert.Equal("COMPLETE CONTENT", File.ReadAllText(Path.Join(staging, "done.txt")));
        Assert.Equal("the whole file", File.ReadAllText(Path.Join(staging, "partial.txt")));
    }

    [Fact]
    public void I_never_write_through_a_symlink_planted_in_the_destination()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, ".bashrc", "from the image");
        HomeFixture.Write(home, "sub/file", "inner");
        string outside = _dir.Create("outside");
        HomeFixture.Write(outside, "precious", "do not touch");
        string destination = _dir.Create("copy");
        HomeFixture.Symlink(destination, Path.Join(outside, "precious"), ".bashrc");
        HomeFixture.Symlink(destination, outside, "sub");

        CopyHarness.Copy(home, destination);

        Assert.Equal("do not touch", File.ReadAllText(Path.Join(outside, "precious")));
        Assert.Single(Directory.GetFileSystemEntries(outside));
        Assert.Equal("from the image", File.ReadAllText(Path.Join(destination, ".bashrc")));
        Assert.False(new FileInfo(Path.Join(destination, ".bashrc")).Attributes.HasFlag(FileAttributes.ReparsePoint));
        Assert.Equal("inner", File.ReadAllText(Path.Join(destination, "sub/file")));
        Assert.Null(new DirectoryInfo(Path.Join(destination, "sub")).LinkTarget);
    }

    [Fact]
    public void I_copy_only_what_an_existing_home_lacks_and_never_touch_what_it_has()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, ".bashrc", "image version");
        HomeFixture.Write(home, ".config/new.conf", "new");
        HomeFixture.Write(home, ".config/old.conf", "image old");
        HomeFixture.Write(home, "fresh/file", "fresh");
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, ".bashrc", "user version");
        HomeFixture.Write(existing, ".config/old.conf", "user old");
        HomeFixture.Write(home, "tool/bin/run", "image's tool");
        HomeFixture.Write(existing, "tool", "the user's file where the image has a folder");

        var report = CopyHarness.Copy(home, _dir["staging"], existing: existing);

        var staged = TreeSnapshot.Take(_dir["staging"]).Entries.Keys.Where(k => k.Length > 0).Order(StringComparer.Ordinal);
        Assert.Equal(new[] { ".config", ".config/new.conf", "fresh", "fresh/file" }, staged);
        Assert.Equal(3, report.KeptExisting);
        Assert.Equal("user version", File.ReadAllText(Path.Join(existing, ".bashrc")));
    }

    [Fact]
    public void I_copy_a_tree_deeper_than_PATH_MAX()
    {
        string home = _dir.Create("home");
        string segment = new('d', 200);
        int fd = CopyHarness.Open(home);
        for (int depth = 0; depth < 30; depth++)
        {
            HomeFixture.Check(Syscall.mkdirat(fd, segment, FilePermissions.ACCESSPERMS));
            int child = Syscall.openat(fd, segment, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY);
            Syscall.close(fd);
            fd = child;
        }

        int file = Syscall.openat(fd, "deepest", OpenFlags.O_WRONLY | OpenFlags.O_CREAT, FilePermissions.DEFFILEMODE);
        Syscall.close(file);
        Syscall.close(fd);

        var report = CopyHarness.Copy(home, _dir["copy"]);

        Assert.Null(report.FatalError);
        Assert.Equal(0, report.Skipped);
        string deepest = string.Join('/', Enumerable.Repeat(segment, 30)) + "/deepest";
        Assert.True(deepest.Length > 4096);
        Assert.True(TreeSnapshot.Take(_dir["copy"]).Entries.ContainsKey(deepest));
    }

    [Fact]
    public void I_keep_many_names_of_one_file_as_hard_links_across_directories_and_workers()
    {
        string home = _dir.Create("home");
        HomeFixture.Write(home, "origin", "shared");
        for (int i = 0; i < 40; i++)
        {
            Directory.CreateDirectory(Path.Join(home, $"d{i}"));
            HomeFixture.Link(home, "origin", $"d{i}/link");
        }

        var report = CopyHarness.Copy(home, _dir["copy"], workers: 8);

        Assert.Equal(40, report.HardLinks);
        var copy = TreeSnapshot.Take(_dir["copy"]);
        Assert.Equal(41, copy.Entries.Values.Count(e => e.Inode == copy["origin"].Inode));
    }

    [Fact]
    public void I_copy_files_over_2_GiB_in_chunks()
    {
        string home = _dir.Create("home");
        string big = Path.Join(home, "big.bin");
        using (var stream = new FileStream(big, FileMode.Create))
        {
            stream.SetLength((2L << 30) + 4096);
            stream.Position = (2L << 30) - 10;
            stream.Write("across 2 GiB"u8);
        }

        // Fully allocated (not sparse), so the plain path copies every byte.
        ChildProcess.MustSucceed("fallocate", "-l", ((2L << 30) + 4096).ToString(System.Globalization.CultureInfo.InvariantCulture), big);

        var report = CopyHarness.Copy(home, _dir["copy"]);

        Assert.Null(report.FatalError);
        var copied = new FileInfo(Path.Join(_dir["copy"], "big.bin"));
        Assert.Equal((2L << 30) + 4096, copied.Length);
        using var read = copied.OpenRead();
        read.Position = (2L << 30) - 10;
        var buffer = new byte[12];
        read.ReadExactly(buffer);
        Assert.Equal("across 2 GiB"u8.ToArray(), buffer);
    }

    [RootTheory]
    [InlineData(VolumeKind.Vfat)]
    [InlineData(VolumeKind.Exfat)]
    public void On_a_FAT_volume_I_copy_what_it_holds_count_what_it_cannot_and_leave_no_stand_in_behind(VolumeKind kind)
    {
        Require.Root();
        string home = _dir.Create("home");
        HomeFixture.Build(home, rootOnlyEntries: true);
        using var volume = new TestVolume(kind, size: "96M");
        string copy = Path.Join(volume.Path, "copy");
        var traits = Probe(volume.Path);

        var report = CopyHarness.Copy(home, copy);

        Assert.Null(report.FatalError);
        Assert.Equal(5, report.Losses[LossKind.Symlinks]);
        Assert.Equal(1, report.Losses[LossKind.Fifos]);
        Assert.Equal(2, report.Losses[LossKind.HardLinks]);
        Assert.Equal(3, report.Losses[LossKind.ExtendedAttributes]); // .bashrc, .config, bin/tool
        Assert.True(report.Losses[LossKind.Owners] > 0, "owners were kept on FAT");
        Assert.Equal(traits.Modes is null ? 0 : report.Losses[LossKind.Modes], report.Losses[LossKind.Modes]);
        Assert.Equal(File.ReadAllBytes(Path.Join(home, ".cache/weights.bin")), File.ReadAllBytes(Path.Join(copy, ".cache/weights.bin")));
        Assert.Equal("hard linked\n", File.ReadAllText(Path.Join(copy, "data/sub/third")));
        Assert.False(File.Exists(Path.Join(copy, "run/pipe")), "a stand-in for the FIFO was left");
        Assert.False(File.Exists(Path.Join(copy, "links/relative")));
        Assert.Equal(0, report.SkippedUnreadable);
    }

    [RootTheory]
    [InlineData(VolumeKind.Vfat)]
    [InlineData(VolumeKind.Exfat)]
    public void On_a_FAT_volume_a_resumed_copy_keeps_complete_files_though_the_volume_rounds_their_times(VolumeKind kind)
    {
        Require.Root();
        string home = _dir.Create("home");
        for (int i = 0; i < 5; i++)
        {
            HomeFixture.Write(home, $"f{i}", $"content {i}");
        }

        HomeFixture.Write(home, "sub/g", "deeper");
        HomeFixture.FixTimes(home);
        using var volume = new TestVolume(kind, size: "64M");
        string copy = Path.Join(volume.Path, "copy");
        CopyHarness.Copy(home, copy);
        // Died inside f4: its time is now, its size short (made anew: fusefat ignores O_TRUNC on an open).
        File.Delete(Path.Join(copy, "f4"));
        File.WriteAllText(Path.Join(copy, "f4"), "conte");

        var again = CopyHarness.Copy(home, copy);

        Assert.Equal(5, again.ResumedFiles);
        Assert.Equal("content 4", File.ReadAllText(Path.Join(copy, "f4")));
    }

    private static VolumeTraits Probe(string directory)
    {
        int fd = CopyHarness.Open(directory);
        try
        {
            return VolumeProbe.Probe(new FaultyPosix(), fd, owners: true);
        }
        finally
        {
            Syscall.close(fd);
        }
    }
}
