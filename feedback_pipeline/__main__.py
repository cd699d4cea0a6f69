from feedback_pipeline.cli import main

main()
