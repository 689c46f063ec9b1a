import ArgumentParser

@main
struct RecBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommender-bench",
        abstract: "Sizes hardware: scoring kernels against bare OpenBLAS, model training speed, text models against their peers.",
        subcommands: [KernelBench.self, TrainingBench.self, TextBench.self],
        defaultSubcommand: KernelBench.self)
}
