using Packet.Agent.Home;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class ImageManifestTests
{
    [Theory]
    [InlineData("plain/path.txt")]
    [InlineData("tab\there/and\nnewline")]
    [InlineData("back\\slash")]
    [InlineData("bad-\0\u00ff-\0\u00c0")]
    public void An_entry_survives_a_round_trip_through_its_line_whatever_its_name(string path)
    {
        var entry = new ManifestEntry(path, ManifestEntry.File, 42, 1_600_000_000, 123_456_789, "abc123");

        string line = ImageManifest.Format(entry);

        Assert.DoesNotContain('\n', line);
        Assert.Equal(entry, ImageManifest.Parse(line));
    }

    [Fact]
    public void Paths_are_ordered_as_a_depth_first_walk_with_sorted_names_visits_them()
    {
        string[] walk = ["a", "a/b", "a/b/c", "a/b-x", "a/c", "b"];

        var sorted = walk.Reverse().Order(Comparer<string>.Create(ImageManifest.ComparePaths)).ToArray();

        Assert.Equal(walk, sorted);
        Assert.True(string.CompareOrdinal("a/b-x", "a/b/c") < 0, "plain string order differs: that is why the comparison is by component");
    }

    [Fact]
    public void Small_files_compare_by_content_large_ones_by_size_and_time()
    {
        var small = new ManifestEntry("f", ManifestEntry.File, 10, 1, 0, "h1");

        Assert.True(small.SameAs(small with { MtimeSeconds = 99 }));
        Assert.False(small.SameAs(small with { Hash = "h2" }));
        var large = new ManifestEntry("f", ManifestEntry.File, 10L << 30, 1, 0, null);
        Assert.True(large.SameAs(large with { Path = "g" }));
        Assert.False(large.SameAs(large with { MtimeNanoseconds = 1 }));
    }

    [Fact]
    public void The_header_carries_the_image_identity() =>
        Assert.Equal("version:2026.11", ImageManifest.ReadIdentity(ImageManifest.Header("version:2026.11")));

    [Theory]
    [InlineData("")]
    [InlineData("f\t1\t2.000000003\t-\t.bashrc")]
    [InlineData("# packet-agent image manifest v2 version:1")]
    public void A_first_line_that_is_not_a_v1_header_names_no_image(string firstLine) =>
        Assert.Null(ImageManifest.ReadIdentity(firstLine));

    [Theory]
    [InlineData("f\t1\t2.000000003\t-")]
    [InlineData("f")]
    [InlineData("")]
    [InlineData("ff\t1\t2.000000003\t-\t.bashrc")]
    [InlineData("\t1\t2.000000003\t-\t.bashrc")]
    public void A_line_without_five_fields_and_a_one_letter_type_is_not_an_entry(string line) =>
        Assert.Null(ImageManifest.Parse(line));

    [Fact]
    public void An_entry_without_a_hash_reads_back_without_one()
    {
        var entry = new ManifestEntry("weights.bin", ManifestEntry.File, 10L << 30, 1_600_000_000, 5, null);

        string line = ImageManifest.Format(entry);

        Assert.Contains("\t-\t", line);
        Assert.Equal(entry, ImageManifest.Parse(line));
    }

    [Theory]
    [InlineData("ends-with-nul\0")]
    [InlineData("\0")]
    public void A_name_ending_in_a_lone_nul_survives_a_round_trip(string path)
    {
        var entry = new ManifestEntry(path, ManifestEntry.File, 1, 2, 3, "h");

        Assert.Equal(entry, ImageManifest.Parse(ImageManifest.Format(entry)));
    }

    [Fact]
    public void A_hand_edited_line_ending_in_a_lone_backslash_keeps_it() =>
        Assert.Equal("ends\\", ImageManifest.Parse("f\t1\t2.000000003\t-\tends\\")!.Path);

    [Theory]
    [InlineData("a", "a/b", -1)]
    [InlineData("a/b", "a", 1)]
    [InlineData("a/b/c", "a/b", 1)]
    [InlineData("a/b", "a/b/c", -1)]
    [InlineData("a/b", "a/b", 0)]
    [InlineData("a/x", "b", -1)]
    [InlineData("b", "a/x", 1)]
    [InlineData("a/b/z", "a/c", -1)]
    public void A_directory_comes_before_what_it_holds_and_after_what_sorts_before_it(string a, string b, int expected) =>
        Assert.Equal(expected, Math.Sign(ImageManifest.ComparePaths(a, b)));

    [Fact]
    public void Entries_of_different_types_are_never_the_same()
    {
        var file = new ManifestEntry("x", ManifestEntry.File, 0, 1, 0, null);

        Assert.False(file.SameAs(file with { Type = ManifestEntry.Directory }));
        Assert.False((file with { Type = ManifestEntry.Symlink, Hash = "h" }).SameAs(file with { Type = ManifestEntry.Fifo, Hash = "h" }));
    }

    [Fact]
    public void A_file_hashed_on_one_side_only_compares_by_size_and_time()
    {
        var hashed = new ManifestEntry("f", ManifestEntry.File, 10, 1, 2, "h1");
        var unhashed = hashed with { Hash = null };

        Assert.True(hashed.SameAs(unhashed));
        Assert.True(unhashed.SameAs(hashed));
        Assert.False(hashed.SameAs(unhashed with { MtimeSeconds = 3 }));
    }

    [Fact]
    public void Files_of_a_different_size_differ_whatever_their_time_or_hash()
    {
        var large = new ManifestEntry("f", ManifestEntry.File, 10L << 30, 1, 0, null);
        var small = new ManifestEntry("f", ManifestEntry.File, 10, 1, 0, "h");

        Assert.False(large.SameAs(large with { Size = 11L << 30 }));
        Assert.False(small.SameAs(small with { Size = 11 }));
        Assert.False(large.SameAs(large with { MtimeSeconds = 2 }));
    }

    [Fact]
    public void A_link_compares_by_its_target_a_directory_or_fifo_by_its_type_alone()
    {
        var link = new ManifestEntry("l", ManifestEntry.Symlink, 0, 1, 0, "target-a");
        var directory = new ManifestEntry("d", ManifestEntry.Directory, 0, 1, 0, null);
        var fifo = new ManifestEntry("p", ManifestEntry.Fifo, 0, 1, 0, null);

        Assert.True(link.SameAs(link with { MtimeSeconds = 9 }));
        Assert.False(link.SameAs(link with { Hash = "target-b" }));
        Assert.True(directory.SameAs(directory with { MtimeSeconds = 9, Size = 4096 }));
        Assert.True(fifo.SameAs(fifo with { MtimeNanoseconds = 9 }));
    }
}
