using System.Text.Json;
using static MoeSharp.Tests.Cli.CliTests;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>moe bench --uneven</c>: the sweep's rows, the routed pad rows each policy adds (exact, from the policies'
/// arithmetic), the table's columns, and its usage errors.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class BenchUnevenTests
{
    private static readonly string[] Tiny =
    [
        "bench",
        "--uneven",
        "--world",
        "4",
        "--tokens",
        "12",
        "--dim",
        "4",
        "--experts",
        "4",
        "--top-k",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
    ];

    private sealed record JsonRow(
        int Sp,
        int R,
        int Tokens,
        string Sharding,
        string Layout,
        long RealRows,
        long PadRows,
        long RowsToOtherRanks,
        long ReduceBytes,
        bool Bitwise
    );

    private static List<JsonRow> RunJson(params string[] args)
    {
        CliResult result = Invoke([.. args, "--json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var rows = new List<JsonRow>();
        var options = StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;
        foreach (string line in result.Out.Split('\n', options))
        {
            using JsonDocument json = JsonDocument.Parse(line);
            JsonElement e = json.RootElement;
            Assert.Equal("moesharp-metrics/1", e.GetProperty("schema").GetString());
            Assert.Equal("uneven", e.GetProperty("kind").GetString());
            Assert.True(e.GetProperty("ms").GetDouble() > 0);
            int Int(string name) => e.GetProperty(name).GetInt32();
            long Long(string name) => e.GetProperty(name).GetInt64();
            string Text(string name) => e.GetProperty(name).GetString()!;
            rows.Add(
                new JsonRow(
                    Int("sp"),
                    Int("r"),
                    Int("tokens"),
                    Text("sharding"),
                    Text("layout"),
                    Long("real_rows"),
                    Long("pad_rows"),
                    Long("rows_to_other_ranks"),
                    Long("reduce_bytes"),
                    e.GetProperty("bitwise_equal_to_reference").GetBoolean()
                )
            );
        }
        return rows;
    }

    [Fact]
    public void Json_SweepsSpAndRemainders_WithExactPadRows()
    {
        // World 4: SP 2 (two groups) and SP 4 (one group); SP 8 does not divide the world. T = 12 + r, K = 2, D = 4.
        List<JsonRow> rows = RunJson(Tiny);
        Assert.Equal(4 * (2 + 3), rows.Count);
        Assert.Equal([(2, 0), (2, 1), (4, 0), (4, 1), (4, 3)], rows.Select(r => (r.Sp, r.R)).Distinct().ToArray());

        // Pad rows of PadToMultiple, worked out by hand: groups × (ceil(T/SP)·SP − T) pad tokens × K rows each.
        var expectedPad = new Dictionary<(int Sp, int Tokens), long>
        {
            [(2, 12)] = 0,
            [(2, 13)] = 2 * 1 * 2,
            [(4, 12)] = 0,
            [(4, 13)] = 1 * 3 * 2,
            [(4, 15)] = 1 * 1 * 2,
        };
        foreach (JsonRow row in rows)
        {
            Assert.Equal(12 + row.R, row.Tokens);
            int groups = 4 / row.Sp;
            Assert.Equal((long)groups * row.Tokens * 2, row.RealRows);
            Assert.Equal(row.Sharding == "PadToMultiple" ? expectedPad[(row.Sp, row.Tokens)] : 0, row.PadRows);
            Assert.Equal(row.Layout == "Replicated" ? 4L * row.Tokens * 4 * sizeof(float) : 0, row.ReduceBytes);
            Assert.True(row.Bitwise, row.ToString());
        }

        // With SP 2 both policies give the same shards, so PadToMultiple sends exactly its pad rows more: they sit on
        // the last SP rank of each group and all go to expert 0, which rank 0 owns.
        foreach (var same in rows.Where(r => r.Sp == 2).GroupBy(r => (r.Tokens, r.Layout)))
        {
            JsonRow pad = same.Single(r => r.Sharding == "PadToMultiple");
            JsonRow balanced = same.Single(r => r.Sharding == "Balanced");
            Assert.Equal(balanced.RowsToOtherRanks + pad.PadRows, pad.RowsToOtherRanks);
        }
    }

    [Fact]
    public void IlgpuCpu_RunsTheSameSweep()
    {
        List<JsonRow> rows = RunJson(
            "bench",
            "--uneven",
            "--device",
            "ilgpu-cpu",
            "--world",
            "2",
            "--tokens",
            "4",
            "--dim",
            "2",
            "--experts",
            "2",
            "--top-k",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0"
        );
        Assert.Equal(8, rows.Count);
        Assert.All(rows, r => Assert.True(r.Bitwise, r.ToString()));
        // T = 5 on SP 2: one pad token, routed once (K = 1), from rank 1 to expert 0 on rank 0.
        JsonRow pad = rows.Single(r => r.Tokens == 5 && r.Sharding == "PadToMultiple" && r.Layout == "Sharded");
        JsonRow balanced = rows.Single(r => r.Tokens == 5 && r.Sharding == "Balanced" && r.Layout == "Sharded");
        Assert.Equal(1, pad.PadRows);
        Assert.Equal(balanced.RowsToOtherRanks + 1, pad.RowsToOtherRanks);
    }

    [Fact]
    public void Table_HasEveryColumnAndRow()
    {
        CliResult result = Invoke(Tiny);
        Assert.True(result.ExitCode == 0, result.ToString());
        string[] lines = result.Out.Split('\n');
        string header = Assert.Single(lines, l => l.Contains("sharding") && l.Contains("layout"));
        string[] columns =
        [
            "SP",
            "r",
            "T",
            "real rows",
            "pad rows",
            "pad/real",
            "a2a MB",
            "reduce MB",
            "d+c ms",
            "reduce ms",
            "total ms",
            "vs ref",
            "bitwise",
        ];
        foreach (string column in columns)
        {
            Assert.Contains(column, header);
        }
        Assert.Equal(
            20,
            lines.Count(l => l.StartsWith('│') && (l.Contains("PadToMultiple") || l.Contains("Balanced")))
        );
        Assert.Equal(5 * 3, lines.Count(l => l.TrimEnd().EndsWith("yes │", StringComparison.Ordinal)));
        // SP 4, T = 13, pad-to-multiple: 3 pad tokens × K = 2 beside 26 real rows.
        Assert.Contains(
            lines,
            l => l.Contains("│  4 │ 1 │ 13 │ PadToMultiple") && l.Contains("│        26 │        6 │")
        );
    }

    [Theory]
    [InlineData("--tokens", "10", "--world", "4")]
    [InlineData("--world", "3")]
    [InlineData("--world", "1")]
    [InlineData("--preset", "deepseek")]
    [InlineData("--experts", "12", "--world", "8")]
    [InlineData("--top-k", "100")]
    [InlineData("--repeats", "0")]
    public void BadOptions_AreUsageErrors(params string[] args)
    {
        CliResult result = Invoke(["bench", "--uneven", .. args]);
        AssertUsageError(result);
        Assert.Contains(args[0], result.Error);
    }
}
